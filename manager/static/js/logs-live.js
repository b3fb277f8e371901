/* My running runs watched together (/logs/live): a tab per run, each a live log view, or all of
 * them side by side. Runs that start while the page is open get a tab of their own (my user
 * room says so). Needs app.js and logs-view.js. */
(function () {
  "use strict";

  const sm = window.sm;
  const logs = window.smLogs;
  const t = sm.t;
  const el = sm.el;

  const watched = new Map(); // execution id -> {tab, pane, view}
  const closed = new Set();
  let tabs;
  let panes;
  let selectedId = null;

  function select(id) {
    selectedId = id;
    watched.forEach((entry, key) => {
      const active = key === id;
      entry.tab.classList.toggle("active", active);
      entry.tab.setAttribute("aria-selected", active ? "true" : "false");
      entry.tab.tabIndex = active ? 0 : -1;
      entry.pane.hidden = !active;
      if (active && entry.view.follow) entry.view.toBottom(); // a hidden pane could not scroll
    });
  }

  function close(id) {
    const entry = watched.get(id);
    if (!entry) return;
    entry.view.stop();
    entry.tab.closest("li").remove();
    entry.pane.remove();
    watched.delete(id);
    closed.add(id);
    if (selectedId === id) select(watched.size ? Array.from(watched.keys())[0] : null);
    showEmpty(false);
  }

  function showEmpty(loading) {
    const empty = document.querySelector('[data-sm="watch-empty"]');
    const none = watched.size === 0;
    empty.classList.toggle("d-none", !none);
    empty.querySelector('[data-sm="watch-loading"]').classList.toggle("d-none", !loading);
    empty.querySelector('[data-sm="watch-none"]').classList.toggle("d-none", loading);
    empty.querySelector('[data-sm="watch-list-link"]').classList.toggle("d-none", loading);
  }

  function add(run) {
    const id = run.execution_id;
    const badge = sm.statusBadge(run.status);
    const name = run.script_name || t("logs.deleted_script");
    const tab = el("button", { type: "button", class: "nav-link", role: "tab", id: `watch-tab-${id}`,
      "aria-controls": `watch-pane-${id}`, "aria-selected": "false", dataset: { sm: "watch-tab", executionId: id } },
    badge, el("span", {}, name), el("code", { class: "small text-body-secondary" }, id.slice(0, 8)));
    tab.addEventListener("click", () => select(id));
    const closeButton = el("button", { type: "button", class: "btn-close btn-close-sm ms-1 align-self-center",
      "aria-label": t("logs.close_tab", { name }), title: t("logs.close_tab", { name }), dataset: { sm: "watch-close" } });
    closeButton.addEventListener("click", () => close(id));
    tabs.append(el("li", { class: "nav-item d-flex", role: "presentation" }, tab, closeButton));

    const host = el("div");
    const pane = el("section", { class: "tab-pane", id: `watch-pane-${id}`, role: "tabpanel", "aria-labelledby": tab.id,
      dataset: { sm: "watch-pane", executionId: id } },
    el("div", { class: "d-flex flex-wrap align-items-center gap-2 mb-2 small" },
      el("strong", {}, name),
      el("span", { class: "text-body-secondary" }, sm.icon("folder2"), " ", run.project_name || "—"),
      el("span", { class: "text-body-secondary" }, sm.icon("clock"), " ", sm.timeElement(run.start_time)),
      el("a", { class: "ms-auto", href: `${sm.rootPath()}/logs/${encodeURIComponent(id)}`, dataset: { sm: "watch-detail" } },
        sm.icon("journal-text"), " ", t("logs.open_full_log"))),
    host);
    pane.hidden = true;
    panes.append(pane);
    const view = new logs.LogView({
      executionId: id,
      host,
      live: true,
      status: run.status,
      startTime: run.start_time,
      streams: ["stdout", "stderr"],
      picker: true,
      onStatus: (status) => sm.setStatus(badge, status),
    });
    watched.set(id, { tab, pane, view });
    view.start();
  }

  async function refresh() {
    const result = await sm.fetch("/api/logs/execution?status=starting,running,stopping&sort=start&order=asc&per_page=50");
    if (!result.ok) {
      sm.notify(sm.errorMessage(result), "warning");
      return;
    }
    result.data.executions.forEach((run) => {
      if (!watched.has(run.execution_id) && !closed.has(run.execution_id)) add(run);
    });
    const focus = document.querySelector('[data-sm="watch"]').dataset.focus;
    if (!selectedId || !watched.has(selectedId)) {
      select(watched.has(focus) ? focus : (watched.size ? Array.from(watched.keys())[0] : null));
    } else {
      select(selectedId);
    }
    showEmpty(false);
  }

  function start() {
    const root = document.querySelector('[data-sm="watch"]');
    if (!root) return;
    tabs = root.querySelector('[data-sm="watch-tabs"]');
    panes = root.querySelector('[data-sm="watch-panes"]');
    const side = document.querySelector('[data-sm="watch-side"]');
    side.addEventListener("change", () => {
      panes.classList.toggle("sm-watch-grid", side.checked);
      tabs.classList.toggle("d-none", side.checked);
    });
    showEmpty(true);
    refresh();
    let timer = null;
    logs.onMyStatus((data) => {
      if (watched.has(data.execution_id) || !sm.isLive(data.status)) return;
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
