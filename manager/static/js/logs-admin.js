/* Admin log pages: the system log's auto-refresh, text filter and export; the audit export.
 * Needs app.js and logs-view.js. */
(function () {
  "use strict";

  const sm = window.sm;
  const logs = window.smLogs;
  const t = sm.t;
  const el = sm.el;
  const REFRESH_MS = 5000;
  const TONES = { CRITICAL: "danger", ERROR: "danger", WARNING: "warning", INFO: "info", DEBUG: "secondary" };

  function levelBadge(level) {
    if (!level) return "";
    const tone = TONES[level] || "secondary";
    return el("span", { class: `badge bg-${tone}-subtle text-${tone}-emphasis border border-${tone}-subtle` }, level);
  }

  function applyFilter(rows, text) {
    const wanted = text.trim().toLowerCase();
    rows.querySelectorAll('[data-sm="system-row"]').forEach((row) => {
      row.hidden = Boolean(wanted) && !row.textContent.toLowerCase().includes(wanted);
    });
  }

  function renderSystem(rows, body) {
    const records = body.records.slice().reverse();
    if (!records.length) {
      rows.replaceChildren(el("tr", {}, el("td", { colspan: "4", class: "text-center text-body-secondary py-4" }, t("logs.system_empty"))));
      return;
    }
    rows.replaceChildren(...records.map((r) => el("tr", { dataset: { sm: "system-row" } },
      el("td", { class: "text-nowrap text-body-secondary" }, r.time || ""),
      el("td", {}, levelBadge(r.level)),
      el("td", { class: "text-body-secondary" }, r.logger || ""),
      el("td", { class: "sm-message" }, r.message))));
  }

  function setupSystem() {
    const form = document.querySelector('[data-sm="system-form"]');
    if (!form) return;
    const rows = document.querySelector('[data-sm="system-rows"]');
    const filter = form.querySelector('[data-sm="system-filter"]');
    filter.addEventListener("input", () => applyFilter(rows, filter.value));
    let watcher = null;
    form.querySelector('[data-sm="system-auto"]').addEventListener("change", (event) => {
      if (watcher) watcher.stop();
      watcher = null;
      if (!event.target.checked) return;
      watcher = sm.every(REFRESH_MS, async () => {
        const query = new URLSearchParams({ file: form.elements.file.value, lines: form.elements.lines.value });
        const result = await sm.fetch(`/api/admin/logs/system?${query}`);
        if (!result.ok) {
          sm.notify(sm.errorMessage(result), "warning");
          return false;
        }
        renderSystem(rows, result.data);
        applyFilter(rows, filter.value);
        return true;
      });
    });
    const exportButton = form.querySelector('[data-sm="system-export"]');
    exportButton.addEventListener("click", async () => {
      sm.setBusy(exportButton, true);
      await logs.downloadPost("/api/admin/logs/export",
        { source: exportButton.dataset.source, format: "csv", lines: parseInt(exportButton.dataset.lines, 10) },
        `${exportButton.dataset.source}.csv`);
      sm.setBusy(exportButton, false);
    });
  }

  function setupAudit() {
    const data = document.getElementById("sm-audit-filters");
    if (!data) return;
    const filters = JSON.parse(data.textContent);
    document.querySelectorAll('[data-sm="audit-export"]').forEach((button) => {
      button.addEventListener("click", async () => {
        sm.setBusy(button, true);
        await logs.downloadPost("/api/admin/logs/export",
          Object.assign({}, filters, { source: "audit", format: button.dataset.format }), `audit.${button.dataset.format}`);
        sm.setBusy(button, false);
      });
    });
  }

  function start() {
    setupSystem();
    setupAudit();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
