/* Workspace helpers on every page: the navbar's project selector (switch, create, rename,
 * delete) and the upload of a run form's `file` parameters. Needs app.js (window.sm). */
(function () {
  "use strict";

  const sm = window.sm;

  // ---- project selector ---------------------------------------------------------------------
  function setupProjectMenu() {
    const menu = document.querySelector('[data-sm="project-menu"]');
    if (!menu) return;
    const strings = JSON.parse(menu.dataset.strings || "{}");
    const activeId = parseInt(menu.dataset.activeId, 10);
    const end = menu.querySelector('[data-sm="project-list-end"]');
    let projects = [];

    async function load() {
      const result = await sm.fetch("/api/projects");
      if (!result.ok) return;
      projects = result.data.projects;
      menu.querySelectorAll('[data-sm="project-choice"]').forEach((node) => node.remove());
      projects.forEach((project) => {
        const item = document.createElement("li");
        item.dataset.sm = "project-choice";
        const button = document.createElement("button");
        button.type = "button";
        button.className = "dropdown-item" + (project.id === activeId ? " active" : "");
        button.dataset.projectId = project.id;
        if (project.id === activeId) button.setAttribute("aria-current", "true");
        button.textContent = project.project_name;
        button.addEventListener("click", () => switchTo(project.id));
        item.appendChild(button);
        end.before(item);
      });
    }

    async function switchTo(id) {
      if (id === activeId) return;
      const result = await sm.fetch(`/api/projects/${id}/set-active`, { method: "POST" });
      if (result.ok) window.location.reload();
      else sm.notify(sm.errorMessage(result), "danger");
    }

    menu.querySelector('[data-sm="project-new"]').addEventListener("click", async () => {
      const name = window.prompt(strings.name_prompt || "Name");
      if (!name) return;
      const result = await sm.fetch("/api/projects", { method: "POST", body: { project_name: name } });
      if (!result.ok) {
        sm.notify(sm.errorMessage(result), "danger");
        return;
      }
      await switchTo(result.data.project.id);
    });

    menu.querySelector('[data-sm="project-rename"]').addEventListener("click", async () => {
      const current = projects.find((p) => p.id === activeId);
      const name = window.prompt(strings.rename_prompt || "Name", current ? current.project_name : "");
      if (!name) return;
      const body = { project_name: name };
      const result = await sm.fetch(`/api/projects/${activeId}`, { method: "PUT", body });
      if (result.ok) window.location.reload();
      else sm.notify(sm.errorMessage(result), "danger");
    });

    menu.querySelector('[data-sm="project-delete"]').addEventListener("click", async () => {
      const current = projects.find((p) => p.id === activeId);
      const name = current ? current.project_name : "";
      if (!window.confirm((strings.delete_confirm || "{name}").replace("{name}", name))) return;
      const result = await sm.fetch(`/api/projects/${activeId}`, { method: "DELETE" });
      if (result.ok) window.location.reload();
      else sm.notify(sm.errorMessage(result), "danger");
    });

    menu.addEventListener("show.bs.dropdown", load);
    load();
  }

  // ---- file parameters ----------------------------------------------------------------------
  function setupFileParameters() {
    document.querySelectorAll("[data-sm-file-param]").forEach((input) => {
      const wrap = input.closest(".sm-param");
      const hidden = wrap.querySelector("input[type=hidden][data-sm-param]");
      const status = wrap.querySelector('[data-sm="file-param-status"]');
      const hint = status ? status.textContent : "";
      const form = input.closest("form");
      const run = form ? form.querySelector('[data-sm="run"]') : null;
      input.addEventListener("change", async () => {
        hidden.value = "";
        if (!input.files.length) return;
        const context = document.querySelector('[data-sm="run-context"]');
        const project = context && context.dataset.projectId ? `?project_id=${context.dataset.projectId}` : "";
        const body = new FormData();
        body.append("file", input.files[0]);
        if (run) sm.setBusy(run, true);
        const result = await sm.fetch(`/api/scripts/${input.dataset.scriptId}/parameter-files${project}`, {
          method: "POST",
          body,
        });
        if (run) sm.setBusy(run, false);
        if (result.ok) {
          hidden.value = result.data.path;
          input.classList.remove("is-invalid");
          if (status) status.textContent = result.data.workspace_path;
          status.dataset.state = "uploaded";
        } else {
          input.value = "";
          input.classList.add("is-invalid");
          if (status) {
            status.textContent = `${sm.errorMessage(result)} ${hint}`;
            status.dataset.state = "refused";
          }
        }
      });
    });
  }

  function start() {
    setupProjectMenu();
    setupFileParameters();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
