/* The file browser: list, upload (button or drag and drop), download, delete, preview of text,
 * CSV, JSON and images. Needs app.js (window.sm). */
(function () {
  "use strict";

  const sm = window.sm;
  const PREVIEW_BYTES = 200 * 1024;
  const CSV_ROWS = 100;

  function humanSize(bytes) {
    const units = ["B", "KiB", "MiB", "GiB"];
    let size = bytes;
    let unit = 0;
    while (size >= 1024 && unit < units.length - 1) {
      size /= 1024;
      unit += 1;
    }
    return unit === 0 ? `${size} ${units[0]}` : `${size.toFixed(1)} ${units[unit]}`;
  }

  function encodePath(path) {
    return path.split("/").map(encodeURIComponent).join("/");
  }

  function kindOf(name) {
    const lower = name.toLowerCase();
    if (/\.(png|jpe?g|gif|webp|bmp)$/.test(lower)) return "image";
    if (lower.endsWith(".csv") || lower.endsWith(".tsv")) return "csv";
    if (lower.endsWith(".json")) return "json";
    if (/\.(txt|log|md|ya?ml|ini|cfg|xml|py)$/.test(lower)) return "text";
    return null;
  }

  function parseCsv(text, separator) {
    const rows = [];
    let row = [];
    let field = "";
    let quoted = false;
    for (let i = 0; i < text.length && rows.length < CSV_ROWS; i += 1) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') {
          field += '"';
          i += 1;
        } else if (c === '"') quoted = false;
        else field += c;
      } else if (c === '"') quoted = true;
      else if (c === separator) {
        row.push(field);
        field = "";
      } else if (c === "\n") {
        row.push(field.replace(/\r$/, ""));
        rows.push(row);
        row = [];
        field = "";
      } else field += c;
    }
    if ((field || row.length) && rows.length < CSV_ROWS) rows.push([...row, field]);
    return rows;
  }

  function setup(root) {
    const base = root.dataset.base;
    const writable = root.dataset.writable === "true";
    const strings = JSON.parse(root.dataset.strings || "{}");
    const rows = root.querySelector('[data-sm="file-rows"]');
    const usage = root.querySelector('[data-sm="files-usage"]');
    const errorBox = root.querySelector('[data-sm="files-error"]');
    const preview = root.querySelector('[data-sm="file-preview"]');
    const previewName = root.querySelector('[data-sm="file-preview-name"]');
    const previewBody = root.querySelector('[data-sm="file-preview-body"]');

    function showError(message) {
      errorBox.textContent = message || "";
      errorBox.classList.toggle("d-none", !message);
    }

    function button(label, icon, kind, handler, sm_) {
      const node = document.createElement("button");
      node.type = "button";
      node.className = `btn btn-sm btn-link p-0 ms-2 ${kind}`;
      node.dataset.sm = sm_;
      node.title = label;
      node.setAttribute("aria-label", label);
      const i = document.createElement("i");
      i.className = `bi bi-${icon}`;
      i.setAttribute("aria-hidden", "true");
      node.appendChild(i);
      node.addEventListener("click", handler);
      return node;
    }

    function row(entry) {
      const tr = document.createElement("tr");
      tr.dataset.sm = "file-row";
      tr.dataset.path = entry.path;
      tr.dataset.type = entry.type;
      const depth = entry.path.split("/").length - 1;
      const name = document.createElement("td");
      name.style.paddingLeft = `${0.5 + depth * 1.25}rem`;
      const icon = document.createElement("i");
      icon.className = `bi bi-${entry.type === "folder" ? "folder2" : entry.type === "file" ? "file-earmark" : "link-45deg"} me-1`;
      icon.setAttribute("aria-hidden", "true");
      name.appendChild(icon);
      const label = document.createElement("span");
      label.className = "font-monospace";
      label.textContent = entry.name;
      name.appendChild(label);
      if (entry.type === "link" || entry.type === "other" || entry.hard_link) {
        const note = document.createElement("span");
        note.className = "badge text-bg-warning ms-2";
        note.textContent = strings.link;
        name.appendChild(note);
      }
      const size = document.createElement("td");
      size.className = "text-end small";
      size.textContent = entry.type === "file" ? humanSize(entry.size) : "";
      const modified = document.createElement("td");
      modified.className = "small";
      modified.textContent = new Date(entry.modified * 1000).toLocaleString();
      const actions = document.createElement("td");
      actions.className = "text-end text-nowrap";
      if (entry.type === "file" && !entry.hard_link) {
        const link = document.createElement("a");
        link.href = `${sm.rootPath()}${base}/${encodePath(entry.path)}`;
        link.setAttribute("download", entry.name);
        link.dataset.sm = "file-download";
        link.title = strings.download;
        link.setAttribute("aria-label", `${strings.download} ${entry.name}`);
        link.innerHTML = '<i class="bi bi-download" aria-hidden="true"></i>';
        actions.appendChild(link);
        if (kindOf(entry.name)) {
          actions.appendChild(button(strings.preview, "eye", "", () => showPreview(entry), "file-preview-open"));
        }
      }
      if (writable) {
        actions.appendChild(button(strings.delete, "trash", "text-danger", () => remove(entry), "file-delete"));
      }
      tr.append(name, size, modified, actions);
      return tr;
    }

    async function load() {
      const result = await sm.fetch(`${base}/files`);
      if (!result.ok) {
        showError(sm.errorMessage(result));
        return;
      }
      const data = result.data;
      usage.textContent = strings.usage.replace("{used}", humanSize(data.usage_bytes)).replace("{quota}", humanSize(data.quota_bytes));
      rows.replaceChildren(...data.files.map(row));
      if (!data.files.length) {
        const tr = document.createElement("tr");
        const td = document.createElement("td");
        td.colSpan = 4;
        td.className = "text-body-secondary small";
        td.dataset.sm = "files-empty";
        td.textContent = strings.empty;
        tr.appendChild(td);
        rows.appendChild(tr);
      }
    }

    async function upload(files) {
      showError("");
      for (const file of files) {
        const body = new FormData();
        body.append("file", file);
        const result = await sm.fetch(`${base}/${encodePath(file.name)}`, { method: "POST", body });
        if (!result.ok) {
          showError(`${file.name}: ${sm.errorMessage(result)}`);
          break;
        }
        sm.notify(strings.uploaded.replace("{name}", file.name), "success");
      }
      await load();
    }

    async function remove(entry) {
      if (!window.confirm(strings.delete_confirm.replace("{name}", entry.path))) return;
      const result = await sm.fetch(`${base}/${encodePath(entry.path)}`, { method: "DELETE" });
      if (!result.ok) showError(sm.errorMessage(result));
      else showError("");
      await load();
    }

    async function showPreview(entry) {
      const url = `${sm.rootPath()}${base}/${encodePath(entry.path)}?inline=1`;
      previewName.textContent = entry.path;
      previewBody.replaceChildren();
      preview.classList.remove("d-none");
      const kind = kindOf(entry.name);
      if (kind === "image") {
        const img = document.createElement("img");
        img.src = url;
        img.alt = entry.name;
        img.className = "img-fluid";
        img.dataset.sm = "file-preview-image";
        previewBody.appendChild(img);
        return;
      }
      const response = await fetch(url, { credentials: "same-origin", headers: { Range: `bytes=0-${PREVIEW_BYTES - 1}` } });
      let text = await response.text();
      if (text.length > PREVIEW_BYTES) text = text.slice(0, PREVIEW_BYTES);
      if (!response.ok) {
        showError(text);
        return;
      }
      if (kind === "csv") {
        const table = document.createElement("table");
        table.className = "table table-sm table-striped small mb-0";
        table.dataset.sm = "file-preview-table";
        parseCsv(text, entry.name.toLowerCase().endsWith(".tsv") ? "\t" : ",").forEach((cells, index) => {
          const tr = document.createElement("tr");
          cells.forEach((cell) => {
            const td = document.createElement(index === 0 ? "th" : "td");
            td.textContent = cell;
            tr.appendChild(td);
          });
          table.appendChild(tr);
        });
        const wrap = document.createElement("div");
        wrap.className = "table-responsive";
        wrap.appendChild(table);
        previewBody.appendChild(wrap);
        return;
      }
      if (kind === "json") {
        try {
          text = JSON.stringify(JSON.parse(text), null, 2);
        } catch (err) {
          /* shown as it is */
        }
      }
      const pre = document.createElement("pre");
      pre.className = "small mb-0";
      pre.dataset.sm = "file-preview-text";
      pre.textContent = text;
      previewBody.appendChild(pre);
    }

    root.querySelector('[data-sm="file-preview-close"]').addEventListener("click", () => preview.classList.add("d-none"));
    const input = root.querySelector('[data-sm="file-upload"]');
    if (input) {
      input.addEventListener("change", () => {
        upload(Array.from(input.files));
        input.value = "";
      });
    }
    const zone = root.querySelector('[data-sm="file-dropzone"]');
    if (writable) {
      zone.addEventListener("dragover", (event) => {
        event.preventDefault();
        zone.classList.add("border-primary");
      });
      zone.addEventListener("dragleave", () => zone.classList.remove("border-primary"));
      zone.addEventListener("drop", (event) => {
        event.preventDefault();
        zone.classList.remove("border-primary");
        upload(Array.from(event.dataTransfer.files));
      });
    }
    load();
  }

  function start() {
    const select = document.querySelector('[data-sm="files-group"]');
    if (select) select.addEventListener("change", () => select.form.submit());
    document.querySelectorAll('[data-sm="file-browser"]').forEach(setup);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
