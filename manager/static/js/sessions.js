/* Live sessions: "Active sessions" on the dashboard (mine) and the admin's Sessions page (everyone's,
 * with Kill). Both refresh every few seconds from GET /api/sessions. Needs app.js. */
(function () {
  "use strict";

  const sm = window.sm;
  const t = sm.t;
  const el = sm.el;
  const REFRESH_MS = 3000;

  function proxyHref(proxyUrl) {
    return proxyUrl.startsWith("/") ? sm.rootPath() + proxyUrl : proxyUrl;
  }

  function openable(session) {
    return session.interactive && session.proxy_url && (session.status === "running" || session.status === "starting");
  }

  async function stopSession(session, button, refresh) {
    sm.setBusy(button, true);
    const result = await sm.fetch(`/api/sessions/${encodeURIComponent(session.execution_id)}/stop`, { method: "POST" });
    if (result.ok) sm.notify(t("sessions.stopped", { script: session.script_name }), "success");
    else {
      sm.setBusy(button, false);
      sm.notify(sm.errorMessage(result), "danger");
    }
    refresh();
  }

  async function killSession(session, button, refresh) {
    const question = t("sessions.confirm_kill", { script: session.script_name, username: session.username });
    if (!window.confirm(question)) return;
    sm.setBusy(button, true);
    const result = await sm.fetch(`/api/admin/sessions/${encodeURIComponent(session.execution_id)}/kill`,
      { method: "POST" });
    if (result.ok) sm.notify(t("sessions.killed", { script: session.script_name }), "success");
    else {
      sm.setBusy(button, false);
      sm.notify(sm.errorMessage(result), "danger");
    }
    refresh();
  }

  /** Open link, Stop and (admins) Kill for one session; `update` keeps them in step. */
  function actionButtons(session, refresh, admin) {
    const open = el("a", { class: "btn btn-sm btn-outline-primary", target: "_blank", rel: "noopener",
      dataset: { sm: "session-open" } }, sm.icon("box-arrow-up-right"), " ", t("sessions.open"));
    const stop = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary", dataset: { sm: "session-stop" } },
      sm.icon("stop-fill"), " ", t("sessions.stop"));
    stop.addEventListener("click", () => stopSession(stop.session || session, stop, refresh));
    const buttons = [open, stop];
    if (admin) {
      const kill = el("button", { type: "button", class: "btn btn-sm btn-outline-danger", dataset: { sm: "session-kill" } },
        sm.icon("x-octagon"), " ", t("sessions.kill"));
      kill.addEventListener("click", () => killSession(kill.session || session, kill, refresh));
      buttons.push(kill);
    }
    return el("div", { class: "d-flex flex-wrap gap-2 justify-content-end" }, buttons);
  }

  function updateActions(node, session) {
    const open = node.querySelector('[data-sm="session-open"]');
    open.classList.toggle("d-none", !openable(session));
    if (session.proxy_url) open.href = proxyHref(session.proxy_url);
    ["session-stop", "session-kill"].forEach((name) => {
      const button = node.querySelector(`[data-sm="${name}"]`);
      if (!button) return;
      button.session = session;
      // A stop under way stays busy until the session is gone from the list.
      if (session.status === "stopping" && name === "session-stop") sm.setBusy(button, true);
    });
  }

  function kindBadge(session) {
    return session.interactive
      ? el("span", { class: "badge text-bg-primary" }, sm.icon("window"), " ", t("sessions.interactive"))
      : el("span", { class: "badge bg-secondary-subtle text-body-secondary border" }, t("sessions.batch"));
  }

  // ---- the dashboard card: my sessions ----------------------------------------------------------
  function myRow(session, refresh) {
    return el("li", { class: "list-group-item d-flex flex-wrap align-items-center gap-2 gap-md-3", dataset: { sm: "session", executionId: session.execution_id } },
      sm.statusBadge(session.status),
      el("div", { class: "flex-grow-1 min-w-0" },
        el("div", { class: "fw-semibold text-truncate" },
          el("span", { dataset: { sm: "session-script" } }, session.script_name), " ", kindBadge(session)),
        el("div", { class: "small text-body-secondary", dataset: { sm: "session-started" } })),
      actionButtons(session, refresh, false));
  }

  function updateMyRow(node, session) {
    sm.setStatus(node.querySelector('[data-sm="status"]'), session.status);
    const age = sm.formatDuration(sm.secondsSince(session.start_time));
    node.querySelector('[data-sm="session-started"]').textContent =
      t("sessions.started_at", { time: sm.formatTime(session.start_time), duration: age });
    updateActions(node, session);
  }

  // ---- the admin table: everyone's sessions ------------------------------------------------------
  function adminRow(session, refresh) {
    return el("tr", { dataset: { sm: "session", executionId: session.execution_id } },
      el("th", { scope: "row", class: "fw-semibold" }, session.username),
      el("td", {}, el("span", { dataset: { sm: "session-script" } }, session.script_name),
        el("div", { class: "small text-body-secondary font-monospace", title: session.execution_id },
          session.execution_id.slice(0, 8))),
      el("td", {}, sm.statusBadge(session.status)),
      el("td", {}, kindBadge(session)),
      el("td", { class: "small", dataset: { sm: "session-started" } }),
      el("td", { class: "small", dataset: { sm: "session-activity" } }),
      el("td", { class: "text-end" }, actionButtons(session, refresh, true)));
  }

  function updateAdminRow(node, session) {
    sm.setStatus(node.querySelector('[data-sm="status"]'), session.status);
    node.querySelector('[data-sm="session-started"]').replaceChildren(sm.timeElement(session.start_time));
    node.querySelector('[data-sm="session-activity"]').replaceChildren(
      session.last_activity ? sm.timeElement(session.last_activity) : el("span", { class: "text-body-secondary" }, "—"));
    updateActions(node, session);
  }

  // ---- both: a list kept fresh -------------------------------------------------------------------
  function watch(root, url, createRow, updateRow) {
    const list = root.querySelector('[data-sm="session-list"]');
    const empty = root.querySelector('[data-sm="sessions-empty"]');
    const loading = root.querySelector('[data-sm="sessions-loading"]');
    const none = root.querySelector('[data-sm="sessions-none"]');
    const count = root.querySelector('[data-sm="session-count"]');
    let poller = null;
    let warned = false;
    const refresh = () => poller && poller.now();
    poller = sm.every(REFRESH_MS, async () => {
      const result = await sm.fetch(url);
      if (!result.ok) {
        if (!warned) sm.notify(sm.errorMessage(result), "warning");
        warned = true;
        return result.status !== 401 && result.status !== 403;
      }
      warned = false;
      const sessions = result.data.sessions || [];
      sm.syncChildren(list, sessions, (s) => s.execution_id, (s) => createRow(s, refresh), updateRow);
      loading.classList.add("d-none");
      none.classList.toggle("d-none", sessions.length > 0);
      empty.classList.toggle("d-none", sessions.length > 0);
      if (count) {
        count.textContent = String(sessions.length);
        count.classList.toggle("d-none", sessions.length === 0);
      }
      return true;
    });
  }

  function start() {
    const mine = document.querySelector('[data-sm="my-sessions"]');
    if (mine) watch(mine, "/api/sessions", myRow, updateMyRow);
    const all = document.querySelector('[data-sm="all-sessions"]');
    if (all) watch(all, "/api/sessions?all=1", adminRow, updateAdminRow);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
