/* Group page, developers: pick the group's environment (POST /api/script-groups/<id>/conda,
 * audited; admins do it in the Limits form). Needs app.js. */
(function () {
  "use strict";

  const sm = window.sm;

  async function setup() {
    const form = document.querySelector('[data-sm="dev-environment"]');
    if (!form) return;
    const select = form.elements.environment;
    const result = await sm.fetch("/api/conda/environments");
    if (result.ok) {
      const names = (result.data.environments || [])
        .filter((env) => env.image_state !== "no spec")
        .map((env) => env.name);
      if (!names.includes(select.dataset.current)) names.unshift(select.dataset.current);
      select.replaceChildren(...names.map((name) => sm.el("option", { value: name }, name)));
      select.value = select.dataset.current;
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (select.value === select.dataset.current) return;
      const button = form.querySelector('[data-sm="dev-environment-save"]');
      sm.setBusy(button, true);
      const saved = await sm.fetch(`/api/script-groups/${form.dataset.groupId}/conda`, {
        method: "POST",
        body: { environment: select.value },
      });
      sm.setBusy(button, false);
      if (saved.ok) sm.reloadWith(form.dataset.saved, "success");
      else sm.notify(sm.errorMessage(saved), "danger");
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
