/* The log list (/logs): filters kept in the address, sortable columns, pages, full-text search
 * with highlighted snippets, saved presets, bulk export and delete. Rows follow my runs' states
 * live through my Socket.IO user room. Needs app.js and logs-view.js. */
(function () {
  "use strict";

  const sm = window.sm;
  const logs = window.smLogs;
  const t = sm.t;
  const el = sm.el;
  const FILTERS = ["q", "script_id", "project_id", "date_from", "date_to", "min_duration", "max_duration"];
  const DEFAULTS = { page: 1, per_page: 50, sort: "start", order: "", user: "" };
  const FIELD_KEYS = { output: "logs.field_output", errors: "logs.field_errors", debug: "logs.field_debug",
    parameters: "logs.field_parameters" };

  let form;
  let context;
  let state;
  const selected = new Set();
  let loadCount = 0;

  // ---- state <-> address <-> form -----------------------------------------------------------------
  function readState(search) {
    const params = new URLSearchParams(search);
    const found = { status: (params.get("status") || "").split(",").filter(Boolean) };
    FILTERS.forEach((key) => {
      found[key] = params.get(key) || "";
    });
    Object.keys(DEFAULTS).forEach((key) => {
      found[key] = params.get(key) || DEFAULTS[key];
    });
    found.page = parseInt(found.page, 10) || 1;
    found.per_page = parseInt(found.per_page, 10) || 50;
    if (!context.admin) found.user = "";
    return found;
  }

  /** Only what differs from the defaults, for the address bar and presets. */
  function stateParams(current, withPage) {
    const params = new URLSearchParams();
    FILTERS.forEach((key) => {
      if (current[key]) params.set(key, current[key]);
    });
    if (current.status.length) params.set("status", current.status.join(","));
    if (current.sort !== DEFAULTS.sort) params.set("sort", current.sort);
    if (current.order) params.set("order", current.order);
    if (current.per_page !== DEFAULTS.per_page) params.set("per_page", String(current.per_page));
    if (current.user) params.set("user", current.user);
    if (withPage && current.page > 1) params.set("page", String(current.page));
    return params;
  }

  function fillForm() {
    FILTERS.forEach((key) => {
      if (form.elements[key]) form.elements[key].value = state[key];
    });
    form.querySelectorAll('input[name="status"]').forEach((box) => {
      box.checked = state.status.includes(box.value);
    });
    if (form.elements.user) form.elements.user.value = state.user;
    document.querySelector('[data-sm="log-per-page"]').value = String(state.per_page);
    showProjectsOf(state.user);
    statusButtonLabel();
  }

  function readForm() {
    FILTERS.forEach((key) => {
      if (form.elements[key]) state[key] = form.elements[key].value.trim();
    });
    state.status = Array.from(form.querySelectorAll('input[name="status"]:checked')).map((b) => b.value);
    state.user = form.elements.user ? form.elements.user.value : "";
  }

  function statusButtonLabel() {
    const chosen = Array.from(form.querySelectorAll('input[name="status"]:checked'));
    const button = form.querySelector('[data-sm="log-status-button"]');
    if (!chosen.length) button.textContent = t("logs.all_statuses");
    else if (chosen.length === 1) button.textContent = chosen[0].labels[0].textContent;
    else button.textContent = t("logs.statuses_n", { count: chosen.length });
  }

  /** An admin looking at one user sees that user's projects; at everyone, every project. */
  function showProjectsOf(user) {
    const select = form.elements.project_id;
    Array.from(select.options).forEach((option) => {
      if (!option.value) return;
      const owner = option.dataset.userId;
      option.hidden = !(user === "all" || owner === (user || String(context.user_id)));
      if (option.hidden && option.selected) select.value = "";
    });
  }

  function go(push) {
    const query = stateParams(state, true).toString();
    const address = `${window.location.pathname}${query ? `?${query}` : ""}`;
    if (push) window.history.pushState(null, "", address);
    else window.history.replaceState(null, "", address);
    load();
  }

  // ---- loading and rows -------------------------------------------------------------------------------
  function endpoint() {
    const params = stateParams(state, true);
    params.delete("user");
    if (!params.has("order") && state.order) params.set("order", state.order);
    if (!state.user) return `/api/logs/execution?${params}`;
    if (state.user !== "all") params.set("user_id", state.user);
    return `/api/admin/logs/execution?${params}`;
  }

  async function load() {
    const mine = ++loadCount;
    const error = form.querySelector('[data-sm="log-filter-error"]');
    const result = await sm.fetch(endpoint());
    if (mine !== loadCount) return; // a newer request is on its way
    const empty = document.querySelector('[data-sm="log-empty"]');
    empty.querySelector('[data-sm="log-loading"]').classList.add("d-none");
    if (!result.ok) {
      error.textContent = sm.errorMessage(result);
      error.classList.remove("d-none");
      return;
    }
    error.classList.add("d-none");
    render(result.data);
  }

  function render(data) {
    const body = document.querySelector('[data-sm="log-rows"]');
    const others = Boolean(state.user);
    document.querySelector('[data-sm="log-user-col"]').classList.toggle("d-none", !others);
    renderHeading();
    sm.syncChildren(body, data.executions, (run) => run.execution_id, createRow, updateRow);
    const none = !data.executions.length;
    const empty = document.querySelector('[data-sm="log-empty"]');
    empty.classList.toggle("d-none", !none);
    empty.querySelector('[data-sm="log-none"]').classList.toggle("d-none", !none);
    // A search counts its matches up to a limit: past it, "more than <limit>".
    const total = data.total_exact === false ? "logs.total_more" : "logs.total";
    document.querySelector('[data-sm="log-total"]').textContent = t(total, { count: data.total });
    renderPages(data.page, data.pages);
    renderSort();
    updateBulk();
  }

  /** "Logs" for my runs; "All runs" or "Runs of <user>" when an admin looks at others'. */
  function renderHeading() {
    const heading = document.querySelector('[data-sm="log-heading"]');
    const subtitle = document.querySelector('[data-sm="log-subtitle"]');
    let text = heading.dataset.mine;
    if (state.user === "all") text = heading.dataset.all;
    else if (state.user) {
      const option = form.querySelector(`[data-sm="log-user"] option[value="${CSS.escape(state.user)}"]`);
      text = heading.dataset.user.replace("{user}", option ? option.textContent : state.user);
    }
    heading.textContent = text;
    subtitle.textContent = state.user ? subtitle.dataset.all : subtitle.dataset.mine;
    document.title = `${state.user ? heading.dataset.all : heading.dataset.mine} · ${document.title.split(" · ").pop()}`;
    const mine = document.querySelector('[data-sm="logs-nav-list"]');
    mine.classList.toggle("active", !state.user);
    if (state.user) mine.removeAttribute("aria-current");
    else mine.setAttribute("aria-current", "page");
  }

  function selectable(run) {
    return run.user_id === context.user_id && !run.live;
  }

  function createRow(run) {
    const box = el("input", { class: "form-check-input", type: "checkbox", dataset: { sm: "log-select" },
      "aria-label": t("logs.select_run") });
    box.addEventListener("change", () => {
      if (box.checked) selected.add(run.execution_id);
      else selected.delete(run.execution_id);
      updateBulk();
    });
    const row = el("tr", { dataset: { sm: "log-row", executionId: run.execution_id } },
      el("td", { class: "sm-col-check" }, box),
      el("td", {}, el("a", { href: `${sm.rootPath()}/logs/${encodeURIComponent(run.execution_id)}`, class: "fw-semibold",
        dataset: { sm: "log-link" } }),
      el("div", { class: "small text-body-secondary" }, el("code", { title: run.execution_id }, run.execution_id.slice(0, 8)))),
      el("td", { dataset: { sm: "log-project" } }),
      el("td", { class: "d-none", dataset: { sm: "log-username" } }),
      el("td", { class: "text-nowrap", dataset: { sm: "log-start" } }),
      el("td", { class: "text-nowrap", dataset: { sm: "log-duration" } }),
      el("td", { dataset: { sm: "log-status" } }, sm.statusBadge(run.status),
        el("div", { class: "small text-body-secondary", dataset: { sm: "log-exit" } })),
      el("td", { dataset: { sm: "log-preview" } }));
    return row;
  }

  function updateRow(row, run) {
    const box = row.querySelector('[data-sm="log-select"]');
    box.disabled = !selectable(run);
    box.checked = selected.has(run.execution_id);
    box.title = run.live ? t("logs.select_running") : "";
    const link = row.querySelector('[data-sm="log-link"]');
    link.textContent = run.script_name || t("logs.deleted_script");
    row.querySelector('[data-sm="log-project"]').textContent = run.project_name || "—";
    const user = row.querySelector('[data-sm="log-username"]');
    user.textContent = run.username || "";
    user.classList.toggle("d-none", !state.user);
    row.querySelector('[data-sm="log-start"]').replaceChildren(sm.timeElement(run.start_time));
    row.querySelector('[data-sm="log-duration"]').textContent = run.live
      ? t("logs.elapsed", { duration: sm.formatDuration(sm.secondsSince(run.start_time)) })
      : sm.formatDuration(run.duration_seconds) || "—";
    sm.setStatus(row.querySelector('[data-sm="status"]'), run.status);
    row.querySelector('[data-sm="log-exit"]').textContent = run.exit_code === null || run.exit_code === undefined
      ? "" : t("run.exit_code_short", { code: run.exit_code });
    row.querySelector('[data-sm="log-preview"]').replaceChildren(...preview(run));
  }

  function plain(text) {
    return text.split("\n").map((line) => logs.ansiSegments(line).map((s) => s.text).join("")).join("\n");
  }

  function lastLines(text, count) {
    const lines = plain(text).replace(/\s+$/, "").split("\n");
    return lines.slice(-count).join("\n");
  }

  /** Search snippets (matches in <mark>, built as nodes), else the end of output and errors. */
  function preview(run) {
    if (run.snippets && run.snippets.length) {
      return run.snippets.map((snippet) => {
        const line = el("p", { class: "sm-snippet", dataset: { sm: "log-snippet" } },
          el("span", { class: "badge bg-secondary-subtle text-body-secondary border me-1" },
            t(FIELD_KEYS[snippet.field] || "logs.field_output")));
        if (snippet.truncated_before) line.append("…");
        (snippet.parts || []).forEach((part) => {
          line.append(part.match ? el("mark", {}, part.text) : document.createTextNode(part.text));
        });
        if (snippet.truncated_after) line.append("…");
        return line;
      });
    }
    const shown = [];
    const output = run.preview && run.preview.output ? lastLines(run.preview.output, 3) : "";
    const errors = run.preview && run.preview.errors ? lastLines(run.preview.errors, 2) : "";
    if (output) shown.push(el("pre", { class: "sm-preview", dataset: { sm: "log-preview-output" } }, output));
    if (errors) shown.push(el("pre", { class: "sm-preview sm-preview-errors", dataset: { sm: "log-preview-errors" } }, errors));
    if (!shown.length) shown.push(el("span", { class: "small text-body-secondary" }, t("logs.no_output")));
    return shown;
  }

  // ---- sorting and pages -------------------------------------------------------------------------------
  function defaultOrder(sort) {
    return sort === "start" || sort === "duration" ? "desc" : "asc";
  }

  function renderSort() {
    const order = state.order || defaultOrder(state.sort);
    document.querySelectorAll("th[data-sort]").forEach((th) => {
      const active = th.dataset.sort === state.sort;
      const button = th.querySelector("button");
      const icon = button.querySelector(".bi");
      th.setAttribute("aria-sort", active ? (order === "asc" ? "ascending" : "descending") : "none");
      button.toggleAttribute("data-active", active);
      icon.className = `bi ${active ? (order === "asc" ? "bi-sort-up-alt" : "bi-sort-down") : "bi-arrow-down-up"}`;
      button.title = t("logs.sort_by", { column: button.textContent.trim() });
    });
  }

  function setupSort() {
    document.querySelectorAll("th[data-sort] button").forEach((button) => {
      button.addEventListener("click", () => {
        const sort = button.closest("th").dataset.sort;
        const current = state.order || defaultOrder(state.sort);
        if (sort === state.sort) state.order = current === "asc" ? "desc" : "asc";
        else state.order = "";
        state.sort = sort;
        state.page = 1;
        go(true);
      });
    });
  }

  function pageItem(label, page, options) {
    const o = options || {};
    const link = el("button", { type: "button", class: "page-link", "aria-label": o.aria || null,
      "aria-current": o.current ? "page" : null, dataset: { page: String(page) } }, label);
    if (!o.disabled && !o.current) {
      link.addEventListener("click", () => {
        state.page = page;
        go(true);
      });
    }
    return el("li", { class: `page-item${o.disabled ? " disabled" : ""}${o.current ? " active" : ""}` }, link);
  }

  function renderPages(page, pages) {
    const list = document.querySelector('[data-sm="log-pages"]');
    const items = [pageItem("‹", page - 1, { disabled: page <= 1, aria: t("logs.previous_page") })];
    const shown = new Set([1, pages, page - 1, page, page + 1].filter((p) => p >= 1 && p <= pages));
    let previous = 0;
    Array.from(shown).sort((a, b) => a - b).forEach((p) => {
      if (p - previous > 1) items.push(el("li", { class: "page-item disabled" }, el("span", { class: "page-link" }, "…")));
      items.push(pageItem(String(p), p, { current: p === page }));
      previous = p;
    });
    items.push(pageItem("›", page + 1, { disabled: page >= pages, aria: t("logs.next_page") }));
    list.replaceChildren(...items);
  }

  // ---- presets ----------------------------------------------------------------------------------------
  async function loadPresets() {
    const result = await sm.fetch("/api/logs/presets");
    if (!result.ok) return;
    const list = document.querySelector('[data-sm="preset-list"]');
    list.replaceChildren(...result.data.presets.map((preset) => {
      const apply = el("button", { type: "button", class: "btn btn-sm btn-link text-start flex-grow-1 p-0",
        dataset: { sm: "preset-apply" } }, preset.name);
      apply.addEventListener("click", () => applyPreset(preset.filters));
      const remove = el("button", { type: "button", class: "btn btn-sm btn-link text-danger p-0",
        "aria-label": t("logs.preset_delete", { name: preset.name }), title: t("logs.preset_delete", { name: preset.name }),
        dataset: { sm: "preset-delete" } }, sm.icon("x-lg"));
      remove.addEventListener("click", async () => {
        const answer = await sm.fetch(`/api/logs/presets/${preset.id}`, { method: "DELETE" });
        if (answer.ok) loadPresets();
        else sm.notify(sm.errorMessage(answer), "danger");
      });
      return el("li", { class: "d-flex align-items-center gap-2 py-1", dataset: { sm: "preset", name: preset.name } }, apply, remove);
    }));
    document.querySelector('[data-sm="presets-none"]').classList.toggle("d-none", result.data.presets.length > 0);
  }

  function applyPreset(filters) {
    const params = new URLSearchParams();
    Object.entries(filters).forEach(([key, value]) => {
      if (key === "user_id") params.set("user", String(value));
      else params.set(key, Array.isArray(value) ? value.join(",") : String(value));
    });
    state = readState(params.toString());
    fillForm();
    go(true);
  }

  async function savePreset() {
    const input = document.querySelector('[data-sm="preset-name"]');
    const name = input.value.trim();
    if (!name) {
      input.focus();
      return;
    }
    readForm();
    const filters = {};
    stateParams(state, false).forEach((value, key) => {
      if (key === "user") {
        if (value !== "all") filters.user_id = value;
      } else filters[key] = value;
    });
    const result = await sm.fetch("/api/logs/presets", { method: "POST", body: { name, filters } });
    if (!result.ok) {
      sm.notify(sm.errorMessage(result), "danger");
      return;
    }
    input.value = "";
    sm.notify(t("logs.preset_saved", { name }), "success");
    loadPresets();
  }

  // ---- bulk actions -----------------------------------------------------------------------------------
  function updateBulk() {
    const bar = document.querySelector('[data-sm="bulk-bar"]');
    bar.classList.toggle("d-none", selected.size === 0);
    bar.querySelector('[data-sm="bulk-count"]').textContent = t("logs.selected", { count: selected.size });
    const boxes = Array.from(document.querySelectorAll('[data-sm="log-select"]:not(:disabled)'));
    const all = document.querySelector('[data-sm="log-select-all"]');
    all.checked = boxes.length > 0 && boxes.every((b) => b.checked);
    all.indeterminate = !all.checked && boxes.some((b) => b.checked);
    all.disabled = boxes.length === 0;
  }

  function setupBulk() {
    document.querySelector('[data-sm="log-select-all"]').addEventListener("change", (event) => {
      document.querySelectorAll('[data-sm="log-row"]').forEach((row) => {
        const box = row.querySelector('[data-sm="log-select"]');
        if (box.disabled) return;
        box.checked = event.target.checked;
        if (box.checked) selected.add(row.dataset.executionId);
        else selected.delete(row.dataset.executionId);
      });
      updateBulk();
    });
    document.querySelector('[data-sm="bulk-clear"]').addEventListener("click", () => {
      selected.clear();
      document.querySelectorAll('[data-sm="log-select"]').forEach((box) => {
        box.checked = false;
      });
      updateBulk();
    });
    document.querySelectorAll('[data-sm="bulk-bar"] [data-format]').forEach((item) => {
      item.addEventListener("click", async () => {
        const button = document.querySelector('[data-sm="bulk-export"]');
        sm.setBusy(button, true);
        await logs.downloadPost("/api/logs/bulk",
          { action: "export", execution_ids: Array.from(selected), format: item.dataset.format }, "logs.zip");
        sm.setBusy(button, false);
      });
    });
    const remove = document.querySelector('[data-sm="bulk-delete"]');
    remove.addEventListener("click", async () => {
      const count = selected.size;
      if (!(await logs.confirmDialog(t("logs.confirm_bulk_delete", { count }), t("logs.delete")))) return;
      sm.setBusy(remove, true);
      const result = await sm.fetch("/api/logs/bulk", { method: "POST", body: { action: "delete", execution_ids: Array.from(selected) } });
      sm.setBusy(remove, false);
      if (!result.ok) {
        sm.notify(sm.errorMessage(result), "danger");
        return;
      }
      selected.clear();
      const skipped = (result.data.skipped || []).length;
      sm.notify(t("logs.deleted_n", { count: result.data.deleted }) + (skipped ? ` ${t("logs.skipped_running", { count: skipped })}` : ""), "success");
      load();
    });
  }

  // ---- start ------------------------------------------------------------------------------------------
  function debounce(fn, ms) {
    let timer = null;
    return () => {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function start() {
    form = document.querySelector('[data-sm="log-filters"]');
    if (!form) return;
    context = JSON.parse(document.getElementById("sm-log-context").textContent);
    state = readState(window.location.search);
    fillForm();
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      readForm();
      state.page = 1;
      go(true);
    });
    form.querySelector('[data-sm="log-reset"]').addEventListener("click", () => {
      state = readState("");
      fillForm();
      go(true);
    });
    form.querySelectorAll('input[name="status"]').forEach((box) => box.addEventListener("change", statusButtonLabel));
    if (form.elements.user) {
      form.elements.user.addEventListener("change", () => {
        showProjectsOf(form.elements.user.value);
        readForm();
        state.page = 1;
        if (state.sort === "user" && !state.user) state.sort = "start";
        go(true);
      });
    }
    ["script_id", "project_id"].forEach((name) => {
      form.elements[name].addEventListener("change", () => {
        readForm();
        state.page = 1;
        go(true);
      });
    });
    document.querySelector('[data-sm="log-per-page"]').addEventListener("change", (event) => {
      state.per_page = parseInt(event.target.value, 10);
      state.page = 1;
      go(true);
    });
    document.querySelector('[data-sm="preset-save"]').addEventListener("click", savePreset);
    document.querySelector('[data-sm="preset-name"]').addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        savePreset();
      }
    });
    window.addEventListener("popstate", () => {
      state = readState(window.location.search);
      fillForm();
      load();
    });
    setupSort();
    setupBulk();
    loadPresets();
    load();
    // My runs starting and ending: refresh the page of the list (and the live count).
    logs.onMyStatus(debounce(load, 400));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
