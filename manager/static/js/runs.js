/* Group page: the run forms. A batch run gets a live status panel under its form; an interactive
 * script opens its proxied page in a new tab; each new run joins "My recent runs". Needs app.js. */
(function () {
  "use strict";

  const sm = window.sm;
  const t = sm.t;
  const el = sm.el;
  const POLL_MS = 1000;

  // ---- parameters -------------------------------------------------------------------------------
  function collectParameters(form) {
    const values = {};
    form.querySelectorAll(".sm-param").forEach((wrap) => {
      const name = wrap.dataset.paramName;
      const type = wrap.dataset.paramType;
      if (type === "multiselect") {
        values[name] = Array.from(wrap.querySelectorAll("input[type=checkbox]:checked")).map((i) => i.value);
        return;
      }
      const input = wrap.querySelector("[data-sm-param]");
      if (!input) return;
      if (type === "bool") {
        values[name] = input.checked;
        return;
      }
      const raw = input.value;
      if (raw === "") return; // not given: the script's default applies
      if (type === "int") values[name] = parseInt(raw, 10);
      else if (type === "float") values[name] = parseFloat(raw);
      else values[name] = raw;
    });
    return values;
  }

  function parametersPanel(form) {
    return form.querySelector(".collapse");
  }

  function openParameters(form) {
    const panel = parametersPanel(form);
    if (panel && window.bootstrap) window.bootstrap.Collapse.getOrCreateInstance(panel, { toggle: false }).show();
  }

  function validateRunForm(form) {
    sm.clearFieldErrors(form);
    let valid = form.checkValidity();
    form.querySelectorAll("[data-sm-multi][data-required]").forEach((list) => {
      if (!list.querySelector("input:checked")) {
        valid = false;
        sm.markFieldError(list.closest(".sm-param"), list, t("run.invalid"));
      }
    });
    form.classList.toggle("was-validated", !valid);
    if (!valid) {
      sm.showNativeErrors(form);
      openParameters(form);
      const first = form.querySelector(":invalid, .is-invalid");
      if (first) setTimeout(() => first.focus(), 350);
    }
    return valid;
  }

  function showFieldErrors(form, errors) {
    Object.keys(errors).forEach((name) => {
      const wrap = Array.from(form.querySelectorAll(".sm-param")).find((w) => w.dataset.paramName === name);
      if (wrap) sm.markFieldError(wrap, wrap.querySelector("[data-sm-param]"), errors[name]);
    });
    if (Object.keys(errors).length) openParameters(form);
  }

  // ---- messages under the form ------------------------------------------------------------------
  /** Replace the box's content with one alert: a bold `title`, then `message` and any extra nodes. */
  function showAlert(box, kind, title, message, ...extra) {
    const alert = el("div", { class: `alert alert-${kind} small py-2 mb-0`, role: kind === "danger" ? "alert" : "status",
      dataset: { sm: "run-alert" } },
    title ? el("strong", {}, title) : null, title && message ? " " : null, message || null, ...extra);
    box.replaceChildren(alert);
    return alert;
  }

  function showRefusal(form, box, result) {
    const data = result.data || {};
    showFieldErrors(form, data.errors || {});
    const message = sm.errorMessage(result);
    if (result.status === 429) {
      showAlert(box, "warning", t("run.quota"), message).dataset.sm = "run-quota";
    } else if (result.status === 507) {
      showAlert(box, "warning", t("run.workspace_full"), message).dataset.sm = "run-workspace-full";
    } else if (result.status === 502 || result.status === 503) {
      showAlert(box, "danger", t("run.start_failed"), message).dataset.sm = "run-start-failed";
    } else {
      showAlert(box, "danger", t("run.failed"), message);
    }
  }

  function proxyHref(proxyUrl) {
    return proxyUrl.startsWith("/") ? sm.rootPath() + proxyUrl : proxyUrl;
  }

  // ---- my recent runs ---------------------------------------------------------------------------
  function recentSection(form) {
    const card = form.closest('[data-sm="script-card"]');
    return card && card.querySelector('[data-sm="recent-runs"]');
  }

  /** One row of "My recent runs", as the run_row macro in script_group.html renders it. */
  function runRow(run) {
    const row = el("li", { class: "sm-run-row", dataset: { sm: "run-row", executionId: run.execution_id } },
      sm.statusBadge(run.status), " ",
      el("span", { class: "sm-run-time" }, sm.timeElement(run.start_time)), " ",
      el("span", { class: "sm-run-duration text-body-secondary", dataset: { sm: "run-duration" } }), " ",
      el("span", { class: "text-body-secondary", dataset: { sm: "run-exit" } }));
    updateRunRow(row, run);
    return row;
  }

  function updateRunRow(row, run) {
    sm.setStatus(row.querySelector('[data-sm="status"]'), run.status);
    row.querySelector('[data-sm="run-duration"]').textContent = sm.formatDuration(run.duration_seconds);
    const exit = row.querySelector('[data-sm="run-exit"]');
    if (exit) {
      exit.textContent = run.exit_code === null || run.exit_code === undefined
        ? "" : t("run.exit_code_short", { code: run.exit_code });
    }
    let open = row.querySelector('[data-sm="run-open"]');
    const openable = run.interactive && run.proxy_url && sm.isLive(run.status);
    if (openable && !open) {
      open = el("a", { class: "btn btn-link btn-sm p-0 ms-1", href: proxyHref(run.proxy_url), target: "_blank",
        rel: "noopener", dataset: { sm: "run-open" } }, sm.icon("box-arrow-up-right"), " ", t("run.open"));
      row.append(open);
    } else if (!openable && open) {
      open.remove();
    }
  }

  /** Show a run at the top of its script's recent runs (or refresh its row). */
  function rememberRun(form, run) {
    const section = recentSection(form);
    if (!section) return;
    const list = section.querySelector('[data-sm="recent-list"]');
    let row = Array.from(list.children).find((r) => r.dataset.executionId === run.execution_id);
    if (row) {
      updateRunRow(row, run);
      return;
    }
    row = runRow(run);
    list.prepend(row);
    while (list.children.length > 5) list.lastElementChild.remove();
    section.querySelector('[data-sm="recent-empty"]').classList.add("d-none");
  }

  // ---- batch runs: the status panel -------------------------------------------------------------
  function statusPanel(run) {
    const stop = el("button", { type: "button", class: "btn btn-sm btn-outline-danger ms-auto", dataset: { sm: "run-stop" } },
      sm.icon("stop-fill"), " ", t("run.stop"));
    const panel = el("div", { class: "sm-run-status border rounded-2 p-2", dataset: { sm: "run-status", executionId: run.execution_id } },
      el("div", { class: "d-flex flex-wrap align-items-center gap-3 small" },
        sm.statusBadge(run.status),
        el("span", {}, t("run.exit_code"), " ", el("strong", { dataset: { sm: "run-exit-code" } }, "—")),
        el("span", {}, t("run.duration"), " ", el("strong", { dataset: { sm: "run-duration" } }, "—")),
        el("code", { class: "text-body-secondary", title: run.execution_id }, run.execution_id.slice(0, 8)),
        el("a", { href: `${sm.rootPath()}/logs/${encodeURIComponent(run.execution_id)}`, dataset: { sm: "run-log-link" } },
          sm.icon("journal-text"), " ", t("logs.open_full_log")),
        stop),
      el("div", { class: "small mt-2 d-none", dataset: { sm: "run-note" }, role: "status" }),
      // Live output: logs-view.js streams the run's lines in (Socket.IO room of the run); it
      // stays hidden until the first line.
      el("pre", { class: "sm-run-output mt-2 mb-0", dataset: { sm: "run-output" }, hidden: true,
        "aria-label": t("run.output_title") }));
    stop.addEventListener("click", async () => {
      sm.setBusy(stop, true);
      const result = await sm.fetch(`/api/sessions/${encodeURIComponent(run.execution_id)}/stop`, { method: "POST" });
      if (result.ok) sm.notify(t("run.stop_sent"), "info");
      else {
        sm.setBusy(stop, false);
        sm.notify(sm.errorMessage(result), "warning");
      }
    });
    return panel;
  }

  function updatePanel(panel, run) {
    sm.setStatus(panel.querySelector('[data-sm="status"]'), run.status);
    const live = sm.isLive(run.status);
    const seconds = run.duration_seconds !== null && run.duration_seconds !== undefined
      ? run.duration_seconds : (live ? sm.secondsSince(run.start_time) : null);
    panel.querySelector('[data-sm="run-duration"]').textContent = sm.formatDuration(seconds) || "—";
    panel.querySelector('[data-sm="run-exit-code"]').textContent =
      run.exit_code === null || run.exit_code === undefined ? "—" : String(run.exit_code);
    const stop = panel.querySelector('[data-sm="run-stop"]');
    if (!live) stop.remove();
    else if (run.status === "stopping") sm.setBusy(stop, true);
    const note = panel.querySelector('[data-sm="run-note"]');
    let text = "";
    let kind = "danger";
    if (run.oom_killed) text = t("run.oom");
    else if (run.timed_out || run.status === "timed_out") text = t("run.timed_out");
    else if (run.status === "failed") text = t("run.ended_failed");
    else if (run.status === "lost") {
      text = t("run.lost_track");
      kind = "warning";
    }
    note.textContent = text;
    note.className = `small mt-2 text-${kind}-emphasis${text ? "" : " d-none"}`;
  }

  /** Stream the run's output into the panel; null without logs-view.js. */
  function liveOutput(panel, run, onStatus) {
    if (!window.smLogs) return null;
    const view = new window.smLogs.LogView({
      executionId: run.execution_id,
      output: panel.querySelector('[data-sm="run-output"]'),
      live: sm.isLive(run.status),
      status: run.status,
      startTime: run.start_time,
      streams: ["stdout", "stderr"],
      onStatus,
    });
    view.start();
    return view;
  }

  function watchBatch(form, box, run) {
    const panel = statusPanel(run);
    box.replaceChildren(panel);
    updatePanel(panel, run);
    rememberRun(form, run);
    let poller = null;
    // The room says at once when the run ends: ask for the final state then.
    const view = liveOutput(panel, run, () => poller && poller.now());
    poller = sm.every(POLL_MS, async () => {
      if (!panel.isConnected) { // a newer run replaced this panel
        if (view) view.stop();
        return false;
      }
      const result = await sm.fetch(`/api/executions/${encodeURIComponent(run.execution_id)}`);
      if (!result.ok) return result.status !== 404 && result.status !== 403;
      updatePanel(panel, result.data);
      rememberRun(form, result.data);
      return sm.isLive(result.data.status);
    });
  }

  // ---- interactive runs: a new tab --------------------------------------------------------------
  /**
   * Open the tab now, inside the click, or popup blockers refuse it; its address is set once
   * the server has answered. Null when the browser blocked it anyway.
   */
  function openBlankTab() {
    let tab = null;
    try {
      tab = window.open("about:blank", "_blank");
    } catch (err) {
      tab = null;
    }
    if (!tab) return null;
    try {
      tab.opener = null; // the script's page gets no handle on this one
      tab.document.title = t("run.opening");
      tab.document.body.textContent = t("run.opening");
    } catch (err) {
      /* a browser that keeps about:blank to itself: the tab still works */
    }
    return tab;
  }

  function showOpened(box, run, tab) {
    const href = proxyHref(run.proxy_url);
    const link = el("a", { href, target: "_blank", rel: "noopener", class: "alert-link", dataset: { sm: "run-open-link" } },
      sm.icon("box-arrow-up-right"), " ", t("run.open_link"));
    if (tab) {
      // enter_url carries a single-use ticket into the session's host (two redirects fewer);
      // the link kept on the page is the plain one, which works at any later time.
      tab.location.href = run.enter_url || href;
      showAlert(box, "success", null, t(run.reused ? "run.reused" : "run.opened"), " ", link);
    } else {
      showAlert(box, "warning", null, t("run.popup_blocked"), " ", link);
    }
  }

  /** Keep an interactive run's row in step until its server is up (or it failed to come up). */
  function followStart(form, run) {
    let polls = 0;
    sm.every(POLL_MS * 2, async () => {
      polls += 1;
      const result = await sm.fetch(`/api/executions/${encodeURIComponent(run.execution_id)}`);
      if (!result.ok) return result.status !== 404 && result.status !== 403;
      rememberRun(form, result.data);
      return result.data.status === "starting" && polls < 60;
    });
  }

  // ---- an interactive script already open with other parameters --------------------------------
  /**
   * Ask whether to restart the running session with the new parameters or open it as it is.
   * Resolves to "open", "restart" or null (dismissed).
   */
  function askConflict(data) {
    const node = document.getElementById("sm-conflict-modal");
    if (!node || !window.bootstrap) return Promise.resolve(null);
    node.querySelector('[data-sm="conflict-changed"]').textContent = (data.changed || []).join(", ");
    const modal = window.bootstrap.Modal.getOrCreateInstance(node);
    return new Promise((resolve) => {
      let choice = null;
      const buttons = {
        open: node.querySelector('[data-sm="conflict-open"]'),
        restart: node.querySelector('[data-sm="conflict-restart"]'),
      };
      const handlers = {};
      Object.keys(buttons).forEach((option) => {
        handlers[option] = () => {
          choice = option;
          modal.hide();
        };
        buttons[option].addEventListener("click", handlers[option]);
      });
      node.addEventListener("hidden.bs.modal", function done() {
        node.removeEventListener("hidden.bs.modal", done);
        Object.keys(buttons).forEach((option) => buttons[option].removeEventListener("click", handlers[option]));
        resolve(choice);
      });
      modal.show();
    });
  }

  // ---- the forms --------------------------------------------------------------------------------
  function setupRunForms() {
    const context = document.querySelector('[data-sm="run-context"]');
    const projectId = context && context.dataset.projectId ? parseInt(context.dataset.projectId, 10) : null;
    document.querySelectorAll('[data-sm="run-form"]').forEach((form) => {
      const interactive = form.dataset.interactive === "true";
      const button = form.querySelector('[data-sm="run"]');
      const box = form.querySelector('[data-sm="run-result"]');

      function started(run, tab) {
        if (run.interactive && run.proxy_url) {
          showOpened(box, run, tab);
          rememberRun(form, run);
          followStart(form, run);
        } else {
          if (tab) tab.close();
          watchBatch(form, box, run);
        }
      }

      /** Ask the server to run it; ``onConflict`` answers a 409 about a session that runs. */
      async function request(parameters, onConflict) {
        // The tab opens inside the click (popup blockers); the address comes with the answer.
        const tab = interactive ? openBlankTab() : null;
        sm.setBusy(button, true);
        showAlert(box, "info", null, t("run.running"));
        const body = { parameters, project_id: projectId };
        if (onConflict) body.on_conflict = onConflict;
        const result = await sm.fetch(`/api/scripts/${form.dataset.scriptId}/execute`, { method: "POST", body });
        sm.setBusy(button, false);
        if (result.ok) {
          started(result.data, tab);
          return;
        }
        if (tab) tab.close();
        const data = result.data || {};
        if (result.status === 409 && data.running && Array.isArray(data.options)) {
          box.replaceChildren();
          const choice = await askConflict(data);
          if (choice === "restart") await request(parameters, "restart");
          else if (choice === "open") started({ ...data.running, reused: true }, openBlankTab());
          return;
        }
        showRefusal(form, box, result);
      }

      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (!button || button.disabled) return;
        // Scripts that need their parameters looked at get them shown first; Run again runs.
        const panel = parametersPanel(form);
        if (form.dataset.requiresParameters === "true" && panel && !panel.classList.contains("show")) {
          openParameters(form);
          showAlert(box, "info", null, t("run.check_parameters"));
          return;
        }
        if (!validateRunForm(form)) return;
        await request(collectParameters(form), null);
      });
    });
  }

  function start() {
    setupRunForms();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
