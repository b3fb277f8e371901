/* Group page, admins only: the "Limits" form (a group's resource limits and its environment).
 * Limits are saved with PUT /api/script-groups/<id>/limits (only the fields that changed; null
 * drops an admin edit), the environment with POST /api/script-groups/<id>/conda. Needs app.js. */
(function () {
  "use strict";

  const sm = window.sm;
  const t = sm.t;
  const FIELDS = ["memory", "cpus", "pids", "max_sessions_per_user", "run_timeout", "idle_timeout", "workspace_quota",
    "pool_size", "network"];
  const NUMBERS = ["cpus", "pids", "max_sessions_per_user", "pool_size"];
  const DURATIONS = ["run_timeout", "idle_timeout"];

  const DURATION_UNITS = { "": 1, s: 1, m: 60, h: 3600, d: 86400 };

  /** What the server should get for a field's text: numbers as numbers, durations in seconds. */
  function typed(field, text) {
    const value = text.trim();
    if (NUMBERS.includes(field) && value !== "" && Number.isFinite(Number(value))) return Number(value);
    const duration = DURATIONS.includes(field) && /^(\d+)\s*([smhd]?)$/i.exec(value);
    if (duration) return parseInt(duration[1], 10) * DURATION_UNITS[duration[2].toLowerCase()];
    return value; // anything else goes as typed: the server's message names the problem
  }

  /** How a field's value is shown: durations in the largest whole unit (14400 → 4h). */
  function shown(field, value) {
    if (value === null || value === undefined) return "";
    if (DURATIONS.includes(field) && Number.isInteger(value) && value > 0) {
      for (const unit of ["d", "h", "m"]) {
        if (value % DURATION_UNITS[unit] === 0) return `${value / DURATION_UNITS[unit]}${unit}`;
      }
    }
    return String(value);
  }

  function same(field, typedValue, current) {
    if (typeof typedValue === "number") return Number(current) === typedValue;
    return String(typedValue).toLowerCase() === String(current === null || current === undefined ? "" : current).toLowerCase();
  }

  function setup() {
    const button = document.querySelector('[data-sm="group-limits"]');
    const modalNode = document.getElementById("sm-limits-modal");
    if (!button || !modalNode || !window.bootstrap) return;
    const modal = window.bootstrap.Modal.getOrCreateInstance(modalNode);
    const form = modalNode.querySelector('[data-sm="limits-form"]');
    const groupId = form.dataset.groupId;
    const errorBox = form.querySelector('[data-sm="limits-error"]');
    const loading = form.querySelector('[data-sm="limits-loading"]');
    const limitFields = form.querySelector('[data-sm="limits-fields"]');
    const envFields = form.querySelector('[data-sm="environment-fields"]');
    const envSelect = form.elements.environment;
    const save = form.querySelector('[data-sm="limits-save"]');
    let effective = {};

    function wrapOf(field) {
      return form.querySelector(`.sm-limit[data-limit="${field}"]`);
    }

    /** The message under its field when there is one, else above the form. */
    function showError(message, input) {
      if (input) {
        sm.markFieldError(input.closest(".sm-limit, .col-md-6"), input, message);
        input.focus();
        return;
      }
      errorBox.textContent = message;
      errorBox.classList.remove("d-none");
    }

    function fill(data) {
      effective = data.effective || {};
      const edited = data.edited || {};
      FIELDS.forEach((field) => {
        const input = form.elements[field];
        input.value = shown(field, effective[field]);
        input.disabled = false;
        input.placeholder = "";
        delete input.dataset.reset;
        wrapOf(field).querySelector('[data-sm="limit-edited"]')
          .classList.toggle("d-none", !Object.prototype.hasOwnProperty.call(edited, field));
      });
    }

    function fillEnvironments(data) {
      const current = envSelect.dataset.current;
      const options = (data.environments || []).filter((env) => env.image_state !== "no spec").map((env) => {
        const label = env.image_state === "built" ? env.name
          : t("limits.env_unavailable", { name: env.name, state: sm.statusBadge(env.image_state).textContent });
        return sm.el("option", { value: env.name, selected: env.name === current }, label);
      });
      if (options.length) envSelect.replaceChildren(...options);
      envSelect.value = current;
    }

    async function load() {
      sm.clearFieldErrors(form);
      errorBox.classList.add("d-none");
      loading.classList.remove("d-none");
      limitFields.classList.add("d-none");
      envFields.classList.add("d-none");
      save.disabled = true;
      const [limits, envs] = await Promise.all([
        sm.fetch(`/api/script-groups/${groupId}/limits`),
        sm.fetch("/api/conda/environments"),
      ]);
      loading.classList.add("d-none");
      if (!limits.ok) {
        showError(sm.errorMessage(limits));
        return;
      }
      fill(limits.data);
      limitFields.classList.remove("d-none");
      if (envs.ok) fillEnvironments(envs.data);
      envFields.classList.remove("d-none");
      save.disabled = false;
    }

    button.addEventListener("click", () => {
      modal.show();
      load();
    });
    modalNode.addEventListener("shown.bs.modal", () => {
      if (!form.elements.memory.disabled) form.elements.memory.focus();
    });

    form.querySelectorAll('[data-sm="limit-reset"]').forEach((reset) => {
      reset.addEventListener("click", () => {
        const input = form.elements[reset.closest(".sm-limit").dataset.limit];
        input.dataset.reset = "1";
        input.value = "";
        input.disabled = true;
        input.placeholder = t("limits.reset_pending");
        reset.closest('[data-sm="limit-edited"]').classList.add("d-none");
      });
    });

    function changes() {
      const changed = {};
      FIELDS.forEach((field) => {
        const input = form.elements[field];
        if (input.dataset.reset === "1") {
          changed[field] = null;
          return;
        }
        const value = typed(field, input.value);
        if (!same(field, value, effective[field])) changed[field] = value;
      });
      return changed;
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      sm.clearFieldErrors(form);
      errorBox.classList.add("d-none");
      const limits = changes();
      const environment = envSelect.value !== envSelect.dataset.current ? envSelect.value : null;
      if (!Object.keys(limits).length && !environment) {
        modal.hide();
        sm.notify(t("common.no_changes"), "info");
        return;
      }
      sm.setBusy(save, true);
      if (Object.keys(limits).length) {
        const result = await sm.fetch(`/api/script-groups/${groupId}/limits`, { method: "PUT", body: limits });
        if (!result.ok) {
          sm.setBusy(save, false);
          // The field comes as "memory" or as "limits.memory", depending on the check that failed.
          const field = String((result.data && result.data.field) || "").replace(/^limits\./, "");
          showError(sm.errorMessage(result), FIELDS.includes(field) ? form.elements[field] : null);
          return;
        }
        fill(result.data); // saved: a failing environment below must not send these again
      }
      if (environment) {
        const result = await sm.fetch(`/api/script-groups/${groupId}/conda`, { method: "POST", body: { environment } });
        if (!result.ok) {
          sm.setBusy(save, false);
          showError(sm.errorMessage(result), envSelect);
          return;
        }
      }
      sm.reloadWith(t("limits.saved"));
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
