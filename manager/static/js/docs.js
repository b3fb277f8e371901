/*
 * Documentation pages: math typeset by KaTeX (served locally), the editor's live preview and
 * save, the metadata history with its restore buttons, and the group page's inline help.
 * The HTML shown comes sanitised from the server (manager/docs/render.py); values in the
 * history are text, never HTML.
 */
(function () {
  "use strict";

  const sm = window.sm;
  const strings = (() => {
    const node = document.getElementById("sm-docs-i18n");
    try {
      return node ? JSON.parse(node.textContent) : {};
    } catch (err) {
      return {};
    }
  })();
  const s = (key) => strings[key] || key;

  // ---- math --------------------------------------------------------------------------------
  const MATH_OPTIONS = {
    throwOnError: false,
    trust: false, // no \href, \url, \includegraphics, \htmlClass...: a formula stays a formula
    strict: "ignore",
    maxSize: 50,
    maxExpand: 500,
    output: "htmlAndMathml",
  };

  /** Typeset every arithmatex element under `scope` (they hold \(..\) or \[..\] as text). */
  function typeset(scope) {
    if (!window.katex || !scope) return;
    scope.querySelectorAll(".arithmatex").forEach((node) => {
      const source = node.textContent.trim();
      const display = source.startsWith("\\[");
      const tex = source.replace(/^\\[([]/, "").replace(/\\[)\]]$/, "");
      try {
        window.katex.render(tex, node, Object.assign({ displayMode: display }, MATH_OPTIONS));
      } catch (err) {
        node.textContent = source; // an invalid formula stays readable as it was written
      }
    });
  }

  // ---- editor ------------------------------------------------------------------------------
  function setupEditor() {
    const form = document.querySelector('[data-sm="doc-editor"]');
    if (!form) return;
    const text = form.querySelector('[data-sm="doc-text"]');
    const preview = form.querySelector('[data-sm="doc-preview"]');
    const state = form.querySelector('[data-sm="doc-preview-state"]');
    const error = form.querySelector('[data-sm="doc-error"]');
    const save = form.querySelector('[data-sm="doc-save"]');
    const scriptId = Number(form.dataset.scriptId);
    let saved = text.value;
    let timer = null;
    let sequence = 0;

    function showError(message) {
      error.textContent = message || "";
      error.classList.toggle("d-none", !message);
    }

    async function refreshPreview() {
      const mine = ++sequence;
      state.textContent = s("previewing");
      const result = await sm.fetch("/api/docs/render", {
        method: "POST",
        body: { script_id: scriptId, markdown: text.value },
      });
      if (mine !== sequence) return; // a newer keystroke has its own request under way
      state.textContent = text.value === saved ? "" : s("unsaved");
      if (!result.ok) {
        showError(sm.errorMessage(result));
        return;
      }
      showError("");
      preview.innerHTML = result.data.html; // sanitised by the server's allow-list
      typeset(preview);
    }

    text.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(refreshPreview, 250);
    });

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      sm.setBusy(save, true);
      const result = await sm.fetch(`/api/scripts/${scriptId}/description-long`, {
        method: "PUT",
        body: { language: form.dataset.language, markdown: text.value },
      });
      sm.setBusy(save, false);
      if (!result.ok) {
        showError(sm.errorMessage(result));
        return;
      }
      showError("");
      saved = text.value;
      state.textContent = "";
      const path = form.querySelector('[data-sm="doc-path"]');
      if (path) path.textContent = result.data.path || "";
      const note = document.querySelector('[data-sm="doc-template-note"]');
      if (note) note.remove();
      sm.notify(s("saved"), "success");
    });

    window.addEventListener("beforeunload", (event) => {
      if (text.value !== saved) {
        event.preventDefault();
        event.returnValue = s("leave");
      }
    });
  }

  // ---- history -----------------------------------------------------------------------------
  function shown(value, edit) {
    if (value === null || value === undefined || value === "") return s("none_value");
    return typeof value === "string" ? value : JSON.stringify(value, null, 1);
  }

  function valueCell(value, edit, isDoc) {
    const cell = sm.el("td");
    if (isDoc) {
      if (value === null || value === undefined) {
        cell.append(sm.el("span", { class: "text-body-secondary" }, s("none_value")));
        return cell;
      }
      const details = sm.el("details");
      details.append(sm.el("summary", {}, `${value.length} ${s("chars")}`));
      details.append(sm.el("pre", { class: "sm-history-value small" }, value));
      cell.append(details);
      return cell;
    }
    cell.append(sm.el("pre", { class: "sm-history-value small", dataset: { sm: "history-value" } },
      shown(value)));
    if (edit === null) cell.append(sm.el("div", { class: "text-body-secondary" }, s("from_files")));
    return cell;
  }

  function restoreButton(scriptId, entry, field) {
    const button = sm.el("button", {
      type: "button",
      class: "btn btn-sm btn-outline-secondary",
      title: s("restore_hint"),
      dataset: { sm: "history-restore", eventId: entry.id, field: field || "" },
    }, sm.icon("arrow-counterclockwise"), " ", s("restore"));
    button.addEventListener("click", async () => {
      if (!window.confirm(s("confirm"))) return;
      sm.setBusy(button, true);
      const result = await sm.fetch(`/api/scripts/${scriptId}/history/${entry.id}/restore`, {
        method: "POST",
        body: { field: field, side: "before" },
      });
      sm.setBusy(button, false);
      if (!result.ok) {
        sm.notify(sm.errorMessage(result), "danger");
        return;
      }
      sm.notify(s("restored"), "success");
      loadHistory();
    });
    return button;
  }

  function historyRows(scriptId, entry) {
    const when = sm.el("td", { class: "text-nowrap" }, sm.timeElement(entry.created_at));
    const who = entry.username || "—";
    if (entry.kind === "document") {
      const row = sm.el("tr", { dataset: { sm: "history-row", kind: "document" } },
        when, sm.el("td", {}, who),
        sm.el("td", {}, `${s("document")} (${(entry.language || "").toUpperCase()})`,
          sm.el("div", {}, sm.el("code", {}, entry.path || ""))),
        valueCell(entry.before, undefined, true), valueCell(entry.after, undefined, true),
        sm.el("td", { class: "text-end" },
          typeof entry.before === "string" ? restoreButton(scriptId, entry, null) : ""));
      return [row];
    }
    return (entry.changes || []).map((change) => sm.el("tr",
      { dataset: { sm: "history-row", kind: entry.kind, field: change.field } },
      when.cloneNode(true), sm.el("td", {}, who),
      sm.el("td", {}, sm.el("code", {}, change.field)),
      valueCell(change.before, change.before_edit), valueCell(change.after, change.after_edit),
      sm.el("td", { class: "text-end" },
        change.restorable ? restoreButton(scriptId, entry, change.field) : "")));
  }

  async function loadHistory() {
    const box = document.querySelector('[data-sm="history"]');
    if (!box) return;
    const scriptId = box.dataset.scriptId;
    const body = box.querySelector('[data-sm="history-rows"]');
    const result = await sm.fetch(`/api/scripts/${scriptId}/history`);
    if (!result.ok) {
      body.replaceChildren(sm.el("tr", {}, sm.el("td", { colspan: 6, class: "text-danger" },
        sm.errorMessage(result))));
      return;
    }
    const rows = result.data.history.flatMap((entry) => historyRows(scriptId, entry));
    body.replaceChildren(...rows);
    box.querySelector('[data-sm="history-empty"]').classList.toggle("d-none", rows.length > 0);
  }

  // ---- inline help on the group page ---------------------------------------------------------
  function setupInlineHelp() {
    document.querySelectorAll('[data-sm="doc-help-panel"]').forEach((panel) => {
      panel.addEventListener("show.bs.collapse", async () => {
        if (panel.dataset.loaded) return;
        panel.dataset.loaded = "1";
        const target = panel.querySelector('[data-sm="doc-help-body"]');
        const result = await sm.fetch(
          `/api/scripts/${panel.dataset.scriptId}/description-long?format=html`);
        if (!result.ok) {
          target.textContent = sm.errorMessage(result);
          return;
        }
        if (!result.data.exists) {
          target.textContent = panel.dataset.noneText || "";
          return;
        }
        target.innerHTML = result.data.html; // sanitised by the server's allow-list
        typeset(target);
      });
    });
  }

  function start() {
    document.querySelectorAll('[data-sm="doc-content"], [data-sm="doc-preview"]').forEach(typeset);
    setupEditor();
    loadHistory();
    setupInlineHelp();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
