/* Admin users page: reset a user's password (a modal) and clear their failed logins.
 * Uses the helpers app.js exposes as window.sm; messages come rendered from the page. */
(function () {
  "use strict";
  const sm = window.sm;
  const modal = document.getElementById("sm-reset-password");
  const form = document.querySelector('[data-sm="reset-password-form"]');
  let target = null; // the user row whose password is being reset

  document.querySelectorAll('[data-sm="user-row"]').forEach((row) => {
    const reset = row.querySelector('[data-sm="user-reset-password"]');
    if (reset) {
      reset.addEventListener("click", () => {
        target = row;
      });
    }
    const unlock = row.querySelector('[data-sm="user-unlock"]');
    if (unlock) {
      unlock.addEventListener("click", async () => {
        sm.setBusy(unlock, true);
        const result = await sm.fetch(`/api/admin/users/${row.dataset.userId}/unlock`, { method: "POST" });
        sm.setBusy(unlock, false);
        if (result.ok) sm.reloadWith(row.dataset.unlockDone);
        else sm.notify(sm.errorMessage(result), "danger");
      });
    }
  });

  if (!modal || !form) return;
  const input = form.elements.new_password;
  const errorBox = form.querySelector('[data-sm="reset-error"]');

  modal.addEventListener("show.bs.modal", (event) => {
    const row = (event.relatedTarget && event.relatedTarget.closest('[data-sm="user-row"]')) || target;
    target = row;
    form.reset();
    form.classList.remove("was-validated");
    sm.clearFieldErrors(form);
    errorBox.classList.add("d-none");
    modal.querySelector(".modal-title").textContent = row ? row.dataset.resetTitle : "";
  });
  modal.addEventListener("shown.bs.modal", () => input.focus());
  input.addEventListener("input", () => {
    sm.clearFieldErrors(form);
    form.classList.remove("was-validated");
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!target) return;
    sm.clearFieldErrors(form);
    errorBox.classList.add("d-none");
    if (!form.checkValidity()) {
      form.classList.add("was-validated");
      sm.showNativeErrors(form);
      return;
    }
    const button = form.querySelector('[data-sm="reset-submit"]');
    sm.setBusy(button, true);
    const result = await sm.fetch(`/api/admin/users/${target.dataset.userId}/password`, {
      method: "POST",
      body: { new_password: input.value },
    });
    sm.setBusy(button, false);
    if (result.ok) {
      sm.reloadWith(target.dataset.resetDone);
      return;
    }
    errorBox.textContent = sm.errorMessage(result);
    errorBox.classList.remove("d-none");
    input.focus();
  });
})();
