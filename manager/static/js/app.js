/* ScriptsManager page behaviour: theme, language, CSRF-aware fetch, group filters, the metadata
 * editor and the admin user actions, plus the helpers the page scripts share (window.sm): runs.js,
 * group-settings.js, sessions.js and environments.js. No build step, no framework. */
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
      // Bottom right: a notice never covers the navbar (Log out, the menus) at any width.
      box.className = "sm-notices position-fixed bottom-0 end-0 p-3";
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

  // ---- form errors ---------------------------------------------------------------------------
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

  // ---- helpers shared with the page scripts ------------------------------------------------------
  /** A new element: el("span", {class: "badge", dataset: {sm: "x"}}, "text", childNode, ...). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([name, value]) => {
      if (value === null || value === undefined || value === false) return;
      if (name === "class") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : String(value));
    });
    children.flat().forEach((child) => {
      if (child === null || child === undefined || child === false) return;
      node.append(child instanceof Node ? child : String(child));
    });
    return node;
  }

  function icon(name) {
    return el("i", { class: `bi bi-${name}`, "aria-hidden": "true" });
  }

  const LIVE_STATES = ["starting", "running", "stopping"];

  function isLive(status) {
    return LIVE_STATES.includes(status);
  }

  function statusLabel(status) {
    const key = `status.${String(status || "lost").replace(/\s+/g, "_")}`;
    return strings[key] ? t(key) : String(status);
  }

  /** Set a status badge's state; its colours come from app.css ([data-status]). */
  function setStatus(badge, status) {
    badge.dataset.status = status || "";
    badge.textContent = statusLabel(status);
  }

  /** The same badge as the status_badge macro in macros.html. */
  function statusBadge(status) {
    const badge = el("span", { class: "badge sm-status", dataset: { sm: "status" } });
    setStatus(badge, status);
    return badge;
  }

  /** A Date from the API's ISO times, which are UTC even when they carry no zone. */
  function parseUtc(iso) {
    if (!iso) return null;
    const date = new Date(/(Z|[+-]\d\d:?\d\d)$/i.test(iso) ? iso : `${iso}Z`);
    return Number.isNaN(date.getTime()) ? null : date;
  }

  /** A short local time: the time alone today, date and time otherwise. */
  function formatTime(iso) {
    const date = parseUtc(iso);
    if (!date) return "";
    const today = date.toDateString() === new Date().toDateString();
    const options = today ? { timeStyle: "short" } : { dateStyle: "medium", timeStyle: "short" };
    try {
      return new Intl.DateTimeFormat(document.documentElement.lang || undefined, options).format(date);
    } catch (err) {
      return date.toLocaleString();
    }
  }

  function timeElement(iso) {
    const date = parseUtc(iso);
    if (!date) return el("span", { class: "text-body-secondary" }, "—");
    return el("time", { datetime: date.toISOString(), title: date.toLocaleString() }, formatTime(iso));
  }

  /** The same words as the duration macro in macros.html. */
  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined || !(seconds >= 0)) return "";
    const s = Math.round(seconds);
    if (s < 60) return t("duration.seconds", { seconds: s });
    if (s < 3600) return t("duration.minutes", { minutes: Math.floor(s / 60), seconds: s % 60 });
    return t("duration.hours", { hours: Math.floor(s / 3600), minutes: Math.floor((s % 3600) / 60) });
  }

  /** Seconds since `iso` (a live run's age), or null. */
  function secondsSince(iso) {
    const date = parseUtc(iso);
    return date ? Math.max(0, (Date.now() - date.getTime()) / 1000) : null;
  }

  /** Rewrite server-rendered <time data-sm-time> (UTC) in the reader's time zone. */
  function localiseTimes(scope) {
    (scope || document).querySelectorAll("time[data-sm-time]").forEach((node) => {
      const text = formatTime(node.getAttribute("datetime"));
      if (!text) return;
      node.title = node.textContent.trim();
      node.textContent = text;
      node.removeAttribute("data-sm-time");
    });
  }

  /**
   * Call async `task` now, then `ms` after each call ends, while it does not return false.
   * Waits while the tab is hidden. Returns {stop(), now()}; now() runs the task at once.
   */
  function every(ms, task) {
    let timer = null;
    let running = false;
    let stopped = false;
    async function run() {
      timer = null;
      if (stopped || running) return;
      if (document.hidden) {
        timer = setTimeout(run, ms);
        return;
      }
      running = true;
      let again = true;
      try {
        again = (await task()) !== false;
      } catch (err) {
        again = true; // a bad answer once is no reason to stop watching
      }
      running = false;
      if (!stopped && again) timer = setTimeout(run, ms);
    }
    run();
    return {
      stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
      now() {
        if (timer) clearTimeout(timer);
        run();
      },
    };
  }

  /**
   * Make `container`'s children match `items` in order, keeping the nodes of items already shown
   * (so focus and scroll positions survive a refresh): create(item) makes a node, update(node, item)
   * fills it in. Only children with a data-key are managed; the others (a table's <thead>, an
   * empty-state row) keep their place, and new keyed nodes go after them.
   */
  function syncChildren(container, items, keyOf, create, update) {
    const existing = new Map();
    Array.from(container.children).forEach((child) => {
      if (child.dataset.key) existing.set(child.dataset.key, child);
    });
    let previous = null;
    items.forEach((item) => {
      const key = String(keyOf(item));
      let node = existing.get(key);
      if (node) existing.delete(key);
      else {
        node = create(item);
        node.dataset.key = key;
      }
      let wanted = previous ? previous.nextElementSibling : container.firstElementChild;
      while (wanted && !wanted.dataset.key) wanted = wanted.nextElementSibling;
      if (node !== wanted) container.insertBefore(node, wanted);
      update(node, item);
      previous = node;
    });
    existing.forEach((node) => node.remove());
  }

  window.sm = {
    t, fetch: smFetch, notify, errorMessage, reloadWith, setBusy, rootPath,
    clearFieldErrors, markFieldError, showNativeErrors,
    el, icon, isLive, statusBadge, setStatus, formatTime, timeElement, formatDuration, secondsSince,
    localiseTimes, every, syncChildren,
  };

  window.smFetch = smFetch;
  window.smT = t;
  window.smNotify = notify;

  function start() {
    showPendingNotice();
    setupPreferences();
    setupFilters();
    localiseTimes(document);
    setupMetadataEditor();
    setupAdminUsers();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
