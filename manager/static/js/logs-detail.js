/* One run's log page (/logs/<id>): the tabs, the live log view, the header kept in step with the
 * run's state, re-run (asking again for secret parameters) and delete. Needs app.js and
 * logs-view.js. */
(function () {
  "use strict";

  const sm = window.sm;
  const logs = window.smLogs;
  const t = sm.t;

  const TAB_STREAMS = { errors: ["stderr"], debug: ["debug"] };

  let run;
  let view;
  let outputStreams = ["stdout", "stderr"];
  let clock = null;

  function part(name) {
    return document.querySelector(`[data-sm="${name}"]`);
  }

  // ---- header -------------------------------------------------------------------------------------
  function showDuration() {
    const live = sm.isLive(run.status);
    const seconds = live ? sm.secondsSince(run.start_time) : run.duration_seconds;
    part("run-duration").textContent = sm.formatDuration(seconds) || "—";
  }

  function note(kind, name, icon, text) {
    const existing = part(name);
    if (existing || !text) return;
    part("run-notes").append(sm.el("div", { class: `alert alert-${kind} small py-2`, role: "status", dataset: { sm: name } },
      sm.icon(icon), " ", text));
  }

  function showState(data) {
    Object.assign(run, data);
    sm.setStatus(document.querySelector('[data-sm="run-header"] [data-sm="status"]'), run.status);
    const live = sm.isLive(run.status);
    showDuration();
    part("run-exit-code").textContent = run.exit_code === null || run.exit_code === undefined ? "—" : String(run.exit_code);
    part("run-end").replaceChildren(run.end_time ? sm.timeElement(run.end_time) : "—");
    if (run.oom_killed) note("danger", "run-oom", "memory", t("run.oom"));
    if (run.timed_out || run.status === "timed_out") note("warning", "run-timeout", "stopwatch", t("run.timed_out"));
    if (run.log_truncated) note("warning", "run-log-truncated", "scissors", t("run.log_truncated"));
    const remove = part("run-delete");
    if (remove && !live) {
      remove.disabled = false;
      remove.removeAttribute("title");
    }
    const open = part("run-open");
    if (open && !live) open.remove();
    if (!live && clock) {
      clock.stop();
      clock = null;
    }
  }

  /** The run's final figures once it has ended (tail=0: the header, no lines). */
  async function refreshState() {
    const result = await sm.fetch(`/api/logs/execution/${encodeURIComponent(run.execution_id)}?tail=0`);
    if (!result.ok) return;
    showState(result.data);
    const file = result.data.log_file;
    if (file) part("run-log-size").textContent = t("logs.log_size_value", { lines: file.lines, size: (file.size / 1024).toFixed(1) });
    const memory = result.data.peak_memory_bytes;
    if (memory) part("run-memory").textContent = `${(memory / 1048576).toFixed(1)} MB`;
  }

  function showViewers(count) {
    part("run-viewers").hidden = !sm.isLive(run.status) && !count; // who watches a finished run?
    part("run-viewers-count").textContent = t("logs.viewers", { count });
  }

  // ---- tabs ---------------------------------------------------------------------------------------
  function selectTab(tab) {
    document.querySelectorAll('[data-sm="run-tabs"] [data-tab]').forEach((button) => {
      const active = button.dataset.tab === tab;
      button.classList.toggle("active", active);
      button.setAttribute("aria-selected", active ? "true" : "false");
      button.tabIndex = active ? 0 : -1;
    });
    const isLog = ["output", "errors", "debug"].includes(tab);
    part("pane-log").hidden = !isLog;
    part("pane-log").setAttribute("aria-labelledby", `tab-${isLog ? tab : "output"}`);
    part("pane-parameters").hidden = tab !== "parameters";
    part("pane-environment").hidden = tab !== "environment";
    if (!isLog) return;
    if (view.picker && !view.picker.classList.contains("d-none")) outputStreams = view.streams.slice();
    view.setStreams(tab === "output" ? outputStreams : TAB_STREAMS[tab], tab === "output");
  }

  function setupTabs() {
    const buttons = Array.from(document.querySelectorAll('[data-sm="run-tabs"] [data-tab]'));
    buttons.forEach((button, index) => {
      button.tabIndex = index === 0 ? 0 : -1;
      button.addEventListener("click", () => selectTab(button.dataset.tab));
      button.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        const next = buttons[(index + step + buttons.length) % buttons.length];
        next.focus();
        selectTab(next.dataset.tab);
      });
    });
  }

  // ---- re-run and delete --------------------------------------------------------------------------
  async function rerun(secrets, button) {
    const body = {
      parameters: Object.assign({}, run.rerun.parameters, secrets),
      project_id: run.rerun.project_id,
    };
    sm.setBusy(button, true);
    const result = await sm.fetch(run.rerun.url, { method: "POST", body });
    sm.setBusy(button, false);
    if (!result.ok) return sm.errorMessage(result);
    sessionStorage.setItem("sm-notice", JSON.stringify([t("logs.rerun_started"), "success"]));
    window.location.href = `${sm.rootPath()}/logs/${encodeURIComponent(result.data.execution_id)}`;
    return null;
  }

  function setupRerun() {
    const button = part("run-rerun");
    if (!button || !run.rerun.url) return;
    const form = part("rerun-form");
    if (!form) {
      button.addEventListener("click", async () => {
        const problem = await rerun({}, button);
        if (problem) sm.notify(problem, "danger");
      });
      return;
    }
    const modal = window.bootstrap.Modal.getOrCreateInstance(form.closest(".modal"));
    const error = part("rerun-error");
    button.addEventListener("click", () => {
      form.reset();
      error.classList.add("d-none");
      modal.show();
    });
    form.closest(".modal").addEventListener("shown.bs.modal", () => {
      const first = form.querySelector("input");
      if (first) first.focus();
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const secrets = {};
      form.querySelectorAll('[data-sm="rerun-secret"]').forEach((input) => {
        if (input.value !== "") secrets[input.name] = input.value;
      });
      const problem = await rerun(secrets, part("rerun-submit"));
      if (problem) {
        error.textContent = problem;
        error.classList.remove("d-none");
      }
    });
  }

  function setupDelete() {
    const button = part("run-delete");
    if (!button) return;
    button.addEventListener("click", async () => {
      if (!(await logs.confirmDialog(t("logs.confirm_delete"), t("logs.delete")))) return;
      sm.setBusy(button, true);
      const result = await sm.fetch(`/api/logs/execution/${encodeURIComponent(run.execution_id)}`, { method: "DELETE" });
      sm.setBusy(button, false);
      if (!result.ok) {
        sm.notify(sm.errorMessage(result), "danger");
        return;
      }
      sessionStorage.setItem("sm-notice", JSON.stringify([t("logs.deleted_one"), "success"]));
      window.location.href = `${sm.rootPath()}/logs`;
    });
  }

  // ---- start --------------------------------------------------------------------------------------
  function start() {
    const data = document.getElementById("sm-run");
    if (!data) return;
    run = JSON.parse(data.textContent);
    view = new logs.LogView({
      executionId: run.execution_id,
      host: part("log-host"),
      live: run.live,
      status: run.status,
      startTime: run.start_time,
      streams: outputStreams,
      picker: true,
      onStatus: (status) => {
        showState({ status });
        if (!sm.isLive(status)) refreshState();
      },
      onViewers: showViewers,
    });
    view.start();
    setupTabs();
    setupRerun();
    setupDelete();
    if (run.live) clock = sm.every(1000, async () => showDuration());
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
