/* ScriptsManager page behaviour: theme, language, CSRF-aware fetch, group filters, run forms,
 * the metadata editor and the admin user actions. No build step, no framework. */
(function () {
  "use strict";

  // ---- strings -----------------------------------------------------------------------------
  const strings = (function () {
    const node = document.getElementById("sm-i18n");
    try {
      return node ? JSON.parse(node.textContent) : {};
    } catch (err) {
      return {};
    }
  })();

  /** The page-language string for `key`, with `{name}` placeholders filled from `values`. */
  function t(key, values) {
    const text = strings[key] || key;
    return text.replace(/\{(\w+)\}/g, (match, name) =>
      values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : match);
  }

  // ---- fetch with CSRF -------------------------------------------------------------------
  /** The app's URL prefix when it is mounted below the site root ("" otherwise). */
  function rootPath() {
    const meta = document.querySelector('meta[name="sm-root"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  /**
   * fetch() for the JSON API: sends the CSRF header and the session cookie, encodes a plain
   * object `body` as JSON, and resolves to {ok, status, data}. It never rejects: a network
   * failure gives status 0 and a readable message in data.message.
   */
  async function smFetch(url, options) {
    const opts = Object.assign({ method: "GET" }, options || {});
    const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    if (opts.method.toUpperCase() !== "GET") headers["X-CSRFToken"] = csrfToken();
    if (opts.body !== undefined && typeof opts.body !== "string" && !(opts.body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(opts.body);
    }
    opts.headers = headers;
    opts.credentials = "same-origin";
    const target = url.startsWith("/") ? rootPath() + url : url;
    let response;
    try {
      response = await fetch(target, opts);
    } catch (err) {
      return { ok: false, status: 0, data: { message: t("common.network_error") } };
    }
    let data = null;
    const type = response.headers.get("Content-Type") || "";
    if (type.includes("application/json")) {
      try {
        data = await response.json();
      } catch (err) {
        data = null;
      }
    }
    if (!data) data = response.ok ? {} : { message: `${t("common.error")} (HTTP ${response.status})` };
    return { ok: response.ok, status: response.status, data: data };
  }

  function errorMessage(result) {
    return (result.data && (result.data.message || result.data.error_message)) || t("common.error");
  }

  // ---- notices -----------------------------------------------------------------------------
  function notify(message, kind) {
    let box = document.getElementById("sm-notices");
    if (!box) {
      box = document.createElement("div");
      box.id = "sm-notices";
      box.className = "sm-notices position-fixed top-0 end-0 p-3";
      box.setAttribute("aria-live", "polite");
      document.body.appendChild(box);
    }
    const alert = document.createElement("div");
    alert.className = `alert alert-${kind || "info"} alert-dismissible shadow-sm fade show`;
    alert.setAttribute("role", kind === "danger" ? "alert" : "status");
    alert.textContent = message;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close";
    close.setAttribute("data-bs-dismiss", "alert");
    close.setAttribute("aria-label", t("common.close"));
    alert.appendChild(close);
    box.appendChild(alert);
    if (kind !== "danger") setTimeout(() => alert.remove(), 5000);
  }

  /** Reload the page and show `message` once it is back. */
  function reloadWith(message, kind) {
    if (message) sessionStorage.setItem("sm-notice", JSON.stringify([message, kind || "success"]));
    window.location.reload();
  }

  function showPendingNotice() {
    const pending = sessionStorage.getItem("sm-notice");
    if (!pending) return;
    sessionStorage.removeItem("sm-notice");
    try {
      const [message, kind] = JSON.parse(pending);
      notify(message, kind);
    } catch (err) {
      /* a stale or foreign value: nothing to show */
    }
  }

  function setBusy(button, busy) {
    if (!button) return;
    button.disabled = busy;
    button.classList.toggle("sm-busy", busy);
    button.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // ---- theme and language -------------------------------------------------------------------
  function setupPreferences() {
    document.querySelectorAll('[data-sm="theme-toggle"]').forEach((button) => {
      button.addEventListener("click", async () => {
        const root = document.documentElement;
        const theme = root.getAttribute("data-bs-theme") === "dark" ? "light" : "dark";
        root.setAttribute("data-bs-theme", theme);
        document.querySelectorAll('[data-sm="theme-toggle"]').forEach((b) => {
          const label = t(theme === "dark" ? "theme.to_light" : "theme.to_dark");
          b.title = label;
          b.setAttribute("aria-label", label);
        });
        const result = await smFetch("/api/user/preferences", { method: "POST", body: { theme } });
        if (!result.ok) notify(errorMessage(result), "warning");
      });
    });

    document.querySelectorAll("[data-sm-language]").forEach((item) => {
      item.addEventListener("click", async () => {
        const language = item.getAttribute("data-sm-language");
        if (language === document.documentElement.lang) return;
        const result = await smFetch("/api/user/preferences", { method: "POST", body: { language } });
        if (result.ok) window.location.reload();
        else notify(errorMessage(result), "danger");
      });
    });

    document.querySelectorAll('[data-sm="history-back"]').forEach((button) => {
      button.addEventListener("click", () => window.history.back());
    });
  }

  // ---- group page: filters ---------------------------------------------------------------------
  function setupFilters() {
    const form = document.querySelector('[data-sm="script-filters"]');
    if (!form) return;
    const search = form.querySelector('[data-sm="filter-search"]');
    const category = form.querySelector('[data-sm="filter-category"]');
    const tag = form.querySelector('[data-sm="filter-tag"]');
    const cards = Array.from(document.querySelectorAll('[data-sm="script-card"]'));
    const count = document.querySelector('[data-sm="filter-count"]');
    const empty = document.querySelector('[data-sm="filter-empty"]');

    function apply() {
      const words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      const wantedCategory = category.value;
      const wantedTag = tag.value;
      let shown = 0;
      cards.forEach((card) => {
        const text = card.dataset.search || "";
        let tags = [];
        try {
          tags = JSON.parse(card.dataset.tags || "[]");
        } catch (err) {
          tags = [];
        }
        const visible = words.every((w) => text.includes(w))
          && (!wantedCategory || card.dataset.category === wantedCategory)
          && (!wantedTag || tags.includes(wantedTag));
        card.classList.toggle("d-none", !visible);
        if (visible) shown += 1;
      });
      const filtering = words.length || wantedCategory || wantedTag;
      count.textContent = filtering ? t("group.results_count", { shown, total: cards.length }) : "";
      empty.classList.toggle("d-none", shown !== 0);
    }

    form.addEventListener("submit", (event) => event.preventDefault());
    search.addEventListener("input", apply);
    category.addEventListener("change", apply);
    tag.addEventListener("change", apply);
    apply();
  }

  // ---- group page: run forms ----------------------------------------------------------------------
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

  function clearFieldErrors(scope) {
    scope.querySelectorAll(".is-invalid").forEach((el) => el.classList.remove("is-invalid"));
    scope.querySelectorAll("[data-sm-error]").forEach((el) => {
      el.textContent = "";
      el.classList.remove("d-block");
    });
  }

  function markFieldError(wrap, input, message) {
    if (input) input.classList.add("is-invalid");
    const feedback = wrap && wrap.querySelector("[data-sm-error]");
    if (feedback) {
      feedback.textContent = message;
      feedback.classList.add("d-block");
    }
  }

  /** Show the browser's own (localised) message under each field that failed its checks. */
  function showNativeErrors(form) {
    form.querySelectorAll("input, select, textarea").forEach((input) => {
      if (input.validity.valid) return;
      const wrap = input.closest(".sm-param, .col-12, .col-md-6, .col-lg-3") || input.parentElement;
      markFieldError(wrap, input, input.validationMessage);
    });
  }

  function renderResult(box, kind, message, details) {
    box.replaceChildren();
    const alert = document.createElement("div");
    alert.className = `alert alert-${kind} small py-2 mb-0`;
    alert.setAttribute("role", kind === "danger" ? "alert" : "status");
    alert.textContent = message;
    if (details !== undefined) {
      const pre = document.createElement("pre");
      pre.className = "sm-json mt-2 mb-0";
      pre.textContent = JSON.stringify(details, null, 2);
      alert.appendChild(pre);
    }
    box.appendChild(alert);
  }

  function openParameters(form) {
    const panel = form.querySelector(".collapse");
    if (panel && window.bootstrap) window.bootstrap.Collapse.getOrCreateInstance(panel, { toggle: false }).show();
  }

  function validateRunForm(form) {
    clearFieldErrors(form);
    let valid = form.checkValidity();
    form.querySelectorAll("[data-sm-multi][data-required]").forEach((list) => {
      if (!list.querySelector("input:checked")) {
        valid = false;
        markFieldError(list.closest(".sm-param"), list, t("run.invalid"));
      }
    });
    form.classList.toggle("was-validated", !valid);
    if (!valid) {
      showNativeErrors(form);
      openParameters(form);
      const first = form.querySelector(":invalid, .is-invalid");
      if (first) setTimeout(() => first.focus(), 350);
    }
    return valid;
  }

  function setupRunForms() {
    const context = document.querySelector('[data-sm="run-context"]');
    const projectId = context && context.dataset.projectId ? parseInt(context.dataset.projectId, 10) : null;
    document.querySelectorAll('[data-sm="run-form"]').forEach((form) => {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const button = form.querySelector('[data-sm="run"]');
        const box = form.querySelector('[data-sm="run-result"]');
        if (!button || !validateRunForm(form)) return;
        setBusy(button, true);
        renderResult(box, "info", t("run.running"));
        const result = await smFetch(`/api/scripts/${form.dataset.scriptId}/execute`, {
          method: "POST",
          body: { parameters: collectParameters(form), project_id: projectId },
        });
        setBusy(button, false);
        if (result.ok) {
          renderResult(box, "success", t("run.done"), result.data);
          return;
        }
        const fieldErrors = (result.data && result.data.errors) || {};
        Object.keys(fieldErrors).forEach((name) => {
          const wrap = Array.from(form.querySelectorAll(".sm-param")).find((w) => w.dataset.paramName === name);
          if (wrap) markFieldError(wrap, wrap.querySelector("[data-sm-param]"), fieldErrors[name]);
        });
        if (Object.keys(fieldErrors).length) openParameters(form);
        renderResult(box, "danger", `${t("run.failed")} ${errorMessage(result)}`);
      });
    });
  }

  // ---- group page: metadata editor --------------------------------------------------------------
  function setupMetadataEditor() {
    const modalNode = document.getElementById("sm-edit-modal");
    if (!modalNode || !window.bootstrap) return;
    const modal = window.bootstrap.Modal.getOrCreateInstance(modalNode);
    const form = modalNode.querySelector('[data-sm="edit-form"]');
    const errorBox = form.querySelector('[data-sm="edit-error"]');
    const fields = {
      display_name: form.elements.display_name,
      description: form.elements.description,
      required_level: form.elements.required_level,
      category: form.elements.category,
      tags: form.elements.tags,
      execution_timeout: form.elements.execution_timeout,
    };
    let scriptId = null;
    let original = {};

    function tagList(text) {
      return text.split(",").map((s) => s.trim()).filter(Boolean);
    }

    document.querySelectorAll('[data-sm="edit-metadata"]').forEach((button) => {
      button.addEventListener("click", () => {
        scriptId = button.dataset.scriptId;
        original = JSON.parse(button.dataset.metadata || "{}");
        fields.display_name.value = original.display_name || "";
        fields.description.value = original.description || "";
        fields.required_level.value = original.required_level || "operator";
        fields.category.value = original.category || "";
        fields.tags.value = (original.tags || []).join(", ");
        fields.execution_timeout.value = original.execution_timeout || "";
        errorBox.classList.add("d-none");
        clearFieldErrors(form);
        modal.show();
      });
    });
    modalNode.addEventListener("shown.bs.modal", () => fields.display_name.focus());

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearFieldErrors(form);
      errorBox.classList.add("d-none");
      const lang = document.documentElement.lang || "en";
      const changes = {};
      const name = fields.display_name.value.trim();
      if (name !== (original.display_name || "")) changes.display_name = { [lang]: name };
      const description = fields.description.value.trim();
      if (description !== (original.description || "")) changes.description = { [lang]: description };
      if (fields.required_level.value !== original.required_level) {
        changes.required_level = fields.required_level.value;
      }
      const category = fields.category.value.trim();
      if (category !== (original.category || "")) changes.category = category || null;
      const tags = tagList(fields.tags.value);
      if (tags.join(",") !== (original.tags || []).join(",")) changes.tags = tags;
      const timeout = fields.execution_timeout.value.trim();
      if (timeout !== String(original.execution_timeout || "")) {
        changes.execution_timeout = timeout === "" ? null : Number(timeout);
      }
      if (!Object.keys(changes).length) {
        modal.hide();
        notify(t("common.no_changes"), "info");
        return;
      }
      const save = form.querySelector('[data-sm="edit-save"]');
      setBusy(save, true);
      const result = await smFetch(`/api/scripts/${scriptId}/metadata`, { method: "PUT", body: changes });
      setBusy(save, false);
      if (result.ok) {
        reloadWith(t("common.saved"));
        return;
      }
      errorBox.textContent = errorMessage(result);
      errorBox.classList.remove("d-none");
      const field = result.data && result.data.field;
      if (field && fields[field]) {
        markFieldError(fields[field].closest(".col-12, .col-md-6"), fields[field], errorMessage(result));
        fields[field].focus();
      }
    });

    document.querySelectorAll('[data-sm="reparse"]').forEach((button) => {
      button.addEventListener("click", async () => {
        const card = button.closest('[data-sm="script-card"]');
        const message = card && card.querySelector('[data-sm="script-message"]');
        setBusy(button, true);
        const result = await smFetch(`/api/scripts/${button.dataset.scriptId}/refresh-metadata`, { method: "POST" });
        setBusy(button, false);
        if (result.ok) {
          reloadWith(t("edit.reparse_done"));
        } else if (message) {
          message.className = "small text-danger";
          message.textContent = `${t("edit.reparse_failed")} ${errorMessage(result)}`;
        }
      });
    });
  }

  // ---- admin: users ----------------------------------------------------------------------------------
  function setupAdminUsers() {
    const create = document.querySelector('[data-sm="create-user"]');
    if (create) {
      const errorBox = create.querySelector('[data-sm="create-error"]');
      create.addEventListener("submit", async (event) => {
        event.preventDefault();
        clearFieldErrors(create);
        errorBox.classList.add("d-none");
        if (!create.checkValidity()) {
          create.classList.add("was-validated");
          showNativeErrors(create);
          return;
        }
        create.classList.remove("was-validated");
        const body = {
          username: create.elements.username.value.trim(),
          email: create.elements.email.value.trim(),
          password: create.elements.password.value,
          user_level: create.elements.user_level.value,
        };
        const button = create.querySelector("[type=submit]");
        setBusy(button, true);
        const result = await smFetch("/api/admin/users", { method: "POST", body });
        setBusy(button, false);
        if (result.ok) {
          reloadWith(t("admin.user_created", { username: body.username }));
          return;
        }
        errorBox.textContent = errorMessage(result);
        errorBox.classList.remove("d-none");
        const input = result.data && result.data.field && create.elements[result.data.field];
        if (input) {
          markFieldError(input.parentElement, input, errorMessage(result));
          input.focus();
        }
      });
    }

    document.querySelectorAll('[data-sm="user-row"]').forEach((row) => {
      const id = row.dataset.userId;
      const username = row.dataset.username;
      const level = row.querySelector('[data-sm="user-level"]');
      if (level) {
        level.addEventListener("change", async () => {
          level.disabled = true;
          const result = await smFetch(`/api/admin/users/${id}`, { method: "PUT", body: { user_level: level.value } });
          level.disabled = false;
          if (result.ok) {
            level.dataset.current = level.value;
            notify(t("admin.user_updated", { username }), "success");
          } else {
            level.value = level.dataset.current;
            notify(errorMessage(result), "danger");
          }
        });
      }
      const deactivate = row.querySelector('[data-sm="user-deactivate"]');
      if (deactivate) {
        deactivate.addEventListener("click", async () => {
          if (!window.confirm(t("admin.confirm_deactivate", { username }))) return;
          setBusy(deactivate, true);
          const result = await smFetch(`/api/admin/users/${id}`, { method: "DELETE" });
          setBusy(deactivate, false);
          if (result.ok) reloadWith(t("admin.user_updated", { username }));
          else notify(errorMessage(result), "danger");
        });
      }
      const activate = row.querySelector('[data-sm="user-activate"]');
      if (activate) {
        activate.addEventListener("click", async () => {
          setBusy(activate, true);
          const result = await smFetch(`/api/admin/users/${id}`, { method: "PUT", body: { is_active: true } });
          setBusy(activate, false);
          if (result.ok) reloadWith(t("admin.user_updated", { username }));
          else notify(errorMessage(result), "danger");
        });
      }
    });
  }

  window.smFetch = smFetch;
  window.smT = t;
  window.smNotify = notify;

  function start() {
    showPendingNotice();
    setupPreferences();
    setupFilters();
    setupRunForms();
    setupMetadataEditor();
    setupAdminUsers();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
