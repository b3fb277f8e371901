/* Admin panel pages: backup now, delete and restore backups; filter the configuration table.
 * Messages come from data-* attributes the server rendered in the page's language. */
(function () {
  "use strict";

  function failed(result) {
    return (result.data && result.data.message) || window.smT("common.error");
  }

  function reloadWith(message) {
    sessionStorage.setItem("sm-notice", JSON.stringify([message, "success"]));
    window.location.reload();
  }

  function setupBackups() {
    const create = document.querySelector('[data-sm="backup-create"]');
    if (create) {
      create.addEventListener("click", async () => {
        create.disabled = true;
        create.setAttribute("aria-busy", "true");
        const result = await window.smFetch("/api/system/backup", { method: "POST" });
        create.disabled = false;
        create.removeAttribute("aria-busy");
        if (result.ok) reloadWith(create.dataset.done);
        else window.smNotify(failed(result), "danger");
      });
    }
    document.querySelectorAll('[data-sm="backup-delete"]').forEach((button) => {
      button.addEventListener("click", async () => {
        if (!window.confirm(button.dataset.confirm)) return;
        const result = await window.smFetch(
          `/api/system/backups/${encodeURIComponent(button.dataset.date)}`, { method: "DELETE" });
        if (result.ok) reloadWith(button.dataset.done);
        else window.smNotify(failed(result), "danger");
      });
    });
    const form = document.querySelector('[data-sm="restore-form"]');
    if (!form) return;
    document.querySelectorAll('[data-sm="backup-restore"]').forEach((button) => {
      button.addEventListener("click", () => {
        form.querySelector('[data-sm="restore-backup"]').value = button.dataset.backup;
        form.querySelector('[data-sm="restore-name"]').textContent = button.dataset.backup;
        form.querySelector('[data-sm="restore-error"]').textContent = "";
      });
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const body = { backup: data.get("backup"), confirm: data.get("confirm") === "on" };
      if (data.get("where") === "folder") body.target = data.get("target");
      const submit = form.querySelector('[data-sm="restore-submit"]');
      submit.disabled = true;
      const result = await window.smFetch("/api/system/restore", { method: "POST", body: body });
      submit.disabled = false;
      if (result.ok) reloadWith(form.dataset.done);
      else form.querySelector('[data-sm="restore-error"]').textContent = failed(result);
    });
  }

  function setupConfigFilter() {
    const input = document.querySelector('[data-sm="config-filter"]');
    if (!input) return;
    input.addEventListener("input", () => {
      const needle = input.value.trim().toLowerCase();
      document.querySelectorAll('[data-sm="config-row"]').forEach((row) => {
        row.hidden = needle !== "" && !row.textContent.toLowerCase().includes(needle);
      });
    });
  }

  function start() {
    setupBackups();
    setupConfigFilter();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
