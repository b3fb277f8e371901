/* Schedules page: create, edit, pause/resume and delete scheduled runs (the list is rendered by
 * the server; every change reloads it). Needs app.js. */
(function () {
  "use strict";

  const sm = window.sm;
  const strings = document.querySelector('[data-sm="schedule-strings"]').dataset;
  const form = document.querySelector('[data-sm="schedule-form"]');
  const errorBox = form.querySelector('[data-sm="schedule-error"]');
  const field = (name) => form.elements[name];

  function showError(message) {
    errorBox.textContent = message;
    errorBox.classList.remove("d-none");
  }

  async function loadPresets(selected) {
    const select = field("preset_id");
    while (select.options.length > 1) select.remove(1);
    const script = field("script_id").value;
    if (!script) return;
    const project = encodeURIComponent(field("project_id").value);
    const result = await sm.fetch(`/api/scripts/${script}/presets?project_id=${project}`);
    if (!result.ok) return;
    result.data.presets.forEach((preset) => select.add(new Option(preset.name, preset.id)));
    select.value = selected ? String(selected) : "";
  }

  function openForm(schedule) {
    errorBox.classList.add("d-none");
    field("id").value = schedule ? schedule.id : "";
    field("name").value = schedule ? schedule.name : "";
    field("cron").value = schedule ? schedule.cron : "";
    field("timezone").value = schedule ? schedule.timezone : (Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
    field("parameters").value = JSON.stringify(schedule ? schedule.parameters : {});
    if (schedule) {
      field("script_id").value = schedule.script_id;
      field("project_id").value = schedule.project_id;
    }
    field("script_id").disabled = Boolean(schedule);
    form.classList.remove("d-none");
    loadPresets(schedule && schedule.preset_id);
    field("name").focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.classList.add("d-none");
    let parameters;
    try {
      parameters = JSON.parse(field("parameters").value || "{}");
    } catch (err) {
      return showError(strings.badJson);
    }
    const body = {
      name: field("name").value, cron: field("cron").value, timezone: field("timezone").value,
      project_id: field("project_id").value, preset_id: field("preset_id").value || null, parameters: parameters,
    };
    const id = field("id").value;
    if (!id) body.script_id = field("script_id").value;
    const save = form.querySelector('[data-sm="schedule-save"]');
    sm.setBusy(save, true);
    const result = await sm.fetch(id ? `/api/schedules/${id}` : "/api/schedules",
      { method: id ? "PUT" : "POST", body: body });
    sm.setBusy(save, false);
    if (!result.ok) return showError(sm.errorMessage(result));
    sm.reloadWith(strings.saved, "success");
  });

  form.querySelector('[data-sm="schedule-cancel"]').addEventListener("click", () => form.classList.add("d-none"));
  field("script_id").addEventListener("change", () => loadPresets(null));
  field("project_id").addEventListener("change", () => loadPresets(field("preset_id").value));
  document.querySelector('[data-sm="schedule-new"]').addEventListener("click", () => openForm(null));

  document.querySelectorAll('[data-sm="schedule-row"]').forEach((row) => {
    const schedule = JSON.parse(row.dataset.schedule);
    row.querySelector('[data-sm="schedule-edit"]').addEventListener("click", () => openForm(schedule));
    row.querySelector('[data-sm="schedule-toggle"]').addEventListener("click", async (event) => {
      sm.setBusy(event.currentTarget, true);
      const result = await sm.fetch(`/api/schedules/${schedule.id}`,
        { method: "PUT", body: { enabled: !schedule.enabled } });
      if (!result.ok) {
        sm.setBusy(event.currentTarget, false);
        return sm.notify(sm.errorMessage(result), "danger");
      }
      sm.reloadWith(strings.saved, "success");
    });
    row.querySelector('[data-sm="schedule-delete"]').addEventListener("click", async () => {
      if (!window.confirm(strings.confirmDelete.replace("{name}", schedule.name))) return;
      const result = await sm.fetch(`/api/schedules/${schedule.id}`, { method: "DELETE" });
      if (!result.ok) return sm.notify(sm.errorMessage(result), "danger");
      sm.reloadWith(strings.deleted, "success");
    });
  });
})();
