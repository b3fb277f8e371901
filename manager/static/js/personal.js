/* Group page, a user's own things: the star (favourite), my tags on a script, parameter presets.
 * Messages come translated from the page (data-sm="personal-strings"). Needs app.js. */
(function () {
  "use strict";

  const sm = window.sm;
  const strings = document.querySelector('[data-sm="personal-strings"]');
  const say = (name, values) => {
    let text = (strings && strings.dataset[name]) || "";
    Object.entries(values || {}).forEach(([key, value]) => { text = text.split(`{${key}}`).join(value); });
    return text;
  };

  // ---- favourites ------------------------------------------------------------------------------
  function setupStars() {
    document.querySelectorAll('[data-sm="favorite"]').forEach((button) => {
      button.addEventListener("click", async () => {
        const starred = button.getAttribute("aria-pressed") !== "true";
        sm.setBusy(button, true);
        const result = await sm.fetch(`/api/scripts/${button.dataset.scriptId}/favorite`,
          { method: starred ? "PUT" : "DELETE" });
        sm.setBusy(button, false);
        if (!result.ok) return sm.notify(sm.errorMessage(result), "danger");
        button.setAttribute("aria-pressed", starred ? "true" : "false");
        button.classList.toggle("text-warning", starred);
        button.querySelector("i").className = starred ? "bi bi-star-fill" : "bi bi-star";
      });
    });
  }

  // ---- my tags ---------------------------------------------------------------------------------
  function setupTagEditors() {
    document.querySelectorAll('[data-sm="edit-tags"]').forEach((button) => {
      const id = button.dataset.scriptId;
      const form = document.querySelector(`[data-sm="tag-editor"][data-script-id="${id}"]`);
      const input = form.querySelector("input");
      const error = form.querySelector('[data-sm="tag-error"]');
      button.addEventListener("click", () => {
        input.value = button.dataset.tags;
        input.classList.remove("is-invalid");
        form.classList.remove("d-none");
        input.focus();
      });
      form.querySelector('[data-sm="cancel-tags"]').addEventListener("click", () => form.classList.add("d-none"));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const save = form.querySelector('[data-sm="save-tags"]');
        sm.setBusy(save, true);
        const result = await sm.fetch(`/api/scripts/${id}/tags`, { method: "PUT", body: { tags: input.value } });
        sm.setBusy(save, false);
        if (!result.ok) {
          input.classList.add("is-invalid");
          error.textContent = sm.errorMessage(result);
          return;
        }
        sm.reloadWith(say("tagsSaved"), "success");
      });
    });
  }

  // ---- presets ---------------------------------------------------------------------------------
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
      if (type === "bool") values[name] = input.checked;
      else if (input.value !== "") values[name] = input.value;
    });
    return values;
  }

  function fillParameters(form, values) {
    form.querySelectorAll(".sm-param").forEach((wrap) => {
      const name = wrap.dataset.paramName;
      if (!(name in values)) return;
      const value = values[name];
      if (wrap.dataset.paramType === "multiselect") {
        wrap.querySelectorAll("input[type=checkbox]").forEach((box) => { box.checked = value.includes(box.value); });
        return;
      }
      const input = wrap.querySelector("[data-sm-param]");
      if (!input) return;
      if (wrap.dataset.paramType === "bool") input.checked = Boolean(value);
      else input.value = value;
    });
  }

  function projectId() {
    const context = document.querySelector('[data-sm="run-context"]');
    return context ? context.dataset.projectId : "";
  }

  function setupPresets() {
    document.querySelectorAll('[data-sm="presets"]').forEach((box) => {
      const id = box.dataset.scriptId;
      const form = box.closest('[data-sm="run-form"]');
      const select = box.querySelector('[data-sm="preset-select"]');
      const remove = box.querySelector('[data-sm="preset-delete"]');
      let presets = [];

      async function load(selected) {
        const result = await sm.fetch(`/api/scripts/${id}/presets?project_id=${encodeURIComponent(projectId())}`);
        if (!result.ok) return;
        presets = result.data.presets;
        while (select.options.length > 1) select.remove(1);
        presets.forEach((preset) => {
          const label = preset.mine ? preset.name : `${preset.name} (${say("sharedBy", { user: preset.owner })})`;
          const option = new Option(preset.shared && preset.mine ? `${label} ★` : label, preset.id);
          select.add(option);
        });
        select.value = selected ? String(selected) : "";
        select.dispatchEvent(new Event("change"));
      }

      select.addEventListener("change", () => {
        const preset = presets.find((p) => String(p.id) === select.value);
        remove.classList.toggle("d-none", !(preset && preset.mine));
        if (!preset) return;
        fillParameters(form, preset.parameters);
        const panel = document.getElementById(`params-${id}`);
        if (panel && window.bootstrap) window.bootstrap.Collapse.getOrCreateInstance(panel, { toggle: false }).show();
      });

      box.querySelector('[data-sm="preset-save"]').addEventListener("click", async (event) => {
        const current = presets.find((p) => String(p.id) === select.value && p.mine);
        const name = window.prompt(say("presetName"), current ? current.name : "");
        if (!name) return;
        const shared = event.currentTarget.dataset.canShare === "true" && window.confirm(say("presetShare"));
        const body = { name: name, parameters: collectParameters(form), project_id: projectId(), shared: shared };
        // The selected preset of mine under the same name is updated, not saved twice.
        const same = presets.find((p) => p.mine && p.name.toLowerCase() === name.trim().toLowerCase());
        const result = same
          ? await sm.fetch(`/api/presets/${same.id}`, { method: "PUT", body: body })
          : await sm.fetch(`/api/scripts/${id}/presets`, { method: "POST", body: body });
        if (!result.ok) return sm.notify(sm.errorMessage(result), "danger");
        const dropped = result.data.secrets_not_stored || [];
        sm.notify(dropped.length ? say("presetSecrets", { names: dropped.join(", ") }) : say("presetSaved"),
          dropped.length ? "warning" : "success");
        load(result.data.id);
      });

      remove.addEventListener("click", async () => {
        const preset = presets.find((p) => String(p.id) === select.value);
        if (!preset || !window.confirm(say("presetConfirm", { name: preset.name }))) return;
        const result = await sm.fetch(`/api/presets/${preset.id}`, { method: "DELETE" });
        if (!result.ok) return sm.notify(sm.errorMessage(result), "danger");
        sm.notify(say("presetDeleted"), "success");
        load(null);
      });
      load(null);
    });
  }

  function start() {
    setupStars();
    setupTagEditors();
    setupPresets();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
