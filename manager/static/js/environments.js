/* Admin → Environments: each conda-envs/NAME.yml with its image's state, a Build button whose
 * progress lines show live (polled every 2 s while a build runs), details (spec and packages)
 * and Refresh. Needs app.js. */
(function () {
  "use strict";

  const sm = window.sm;
  const t = sm.t;
  const el = sm.el;
  const POLL_MS = 2000;

  function isBuilding(env) {
    return env.image_state === "building" || Boolean(env.build && env.build.state === "building");
  }

  /** Python first, then the rest by name. */
  function sortedPackages(packages) {
    return packages.slice().sort((a, b) => {
      if (a.name === "python") return -1;
      if (b.name === "python") return 1;
      return a.name.localeCompare(b.name);
    });
  }

  function setupDetails() {
    const modalNode = document.getElementById("sm-env-modal");
    if (!modalNode || !window.bootstrap) return () => {};
    const modal = window.bootstrap.Modal.getOrCreateInstance(modalNode);
    const part = (name) => modalNode.querySelector(`[data-sm="env-details-${name}"]`);

    return async function show(name) {
      modalNode.querySelector("#sm-env-title").textContent = t("env.details_title", { name });
      part("loading").classList.remove("d-none");
      part("error").classList.add("d-none");
      part("body").classList.add("d-none");
      modal.show();
      const result = await sm.fetch(`/api/conda/environments/${encodeURIComponent(name)}/info`);
      part("loading").classList.add("d-none");
      if (!result.ok) {
        part("error").textContent = sm.errorMessage(result);
        part("error").classList.remove("d-none");
        return;
      }
      const env = result.data;
      part("python").textContent = env.python_version || "—";
      part("image").textContent = env.image || "—";
      part("state").replaceChildren(sm.statusBadge(env.image_state));
      const groups = env.groups || [];
      part("groups").replaceChildren(...(groups.length
        ? groups.map((g) => el("span", { class: "badge bg-secondary-subtle text-body-secondary border me-1" }, g))
        : [el("span", { class: "text-body-secondary" }, t("env.groups_none"))]));
      part("spec-path").textContent = env.spec || "";
      part("spec").textContent = env.spec_text || "";
      const packages = sortedPackages(env.packages || []);
      part("packages-title").textContent = t("env.packages", { count: packages.length });
      part("packages-none").classList.toggle("d-none", packages.length > 0);
      part("packages").closest(".sm-packages").classList.toggle("d-none", packages.length === 0);
      part("packages").replaceChildren(...packages.map((p) => el("tr", { class: p.name === "python" ? "fw-semibold" : null },
        el("td", {}, p.name), el("td", { class: "font-monospace" }, p.version))));
      part("body").classList.remove("d-none");
    };
  }

  function setup() {
    const table = document.querySelector('[data-sm="env-list"]');
    if (!table) return;
    const empty = document.querySelector('[data-sm="env-empty"]');
    const baseImage = document.querySelector('[data-sm="env-base-image"]');
    const refreshButton = document.querySelector('[data-sm="env-refresh"]');
    const showDetails = setupDetails();
    const lastState = new Map();
    let poller = null;

    async function startBuild(env, button) {
      sm.setBusy(button, true);
      const result = await sm.fetch(`/api/conda/environments/${encodeURIComponent(env.name)}/build`, { method: "POST" });
      if (!result.ok) {
        sm.setBusy(button, false);
        sm.notify(sm.errorMessage(result), "danger");
        return;
      }
      sm.notify(t("env.build_started", { name: env.name }), "info");
      lastState.set(env.name, "building");
      watch();
    }

    function createBody(env) {
      const build = el("button", { type: "button", class: "btn btn-sm btn-outline-primary", dataset: { sm: "env-build" } },
        sm.icon("hammer"), " ", t("env.build"));
      const details = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary", dataset: { sm: "env-details" } },
        sm.icon("info-circle"), " ", t("env.details"));
      const body = el("tbody", { dataset: { sm: "env", name: env.name } },
        el("tr", {},
          el("th", { scope: "row", class: "text-nowrap" }, el("span", { class: "fw-semibold" }, env.name),
            el("div", { class: "small text-body-secondary font-monospace fw-normal" }, env.spec)),
          el("td", { dataset: { sm: "env-python" } }),
          el("td", {}, el("code", { class: "small sm-image-tag", dataset: { sm: "env-image" } })),
          el("td", {}, sm.statusBadge(env.image_state)),
          el("td", { class: "small text-danger-emphasis sm-env-error", dataset: { sm: "env-error" } }),
          el("td", { class: "text-end text-nowrap" }, build, " ", details)),
        el("tr", { class: "sm-env-progress d-none", dataset: { sm: "env-progress-row" } },
          el("td", { colspan: "6" },
            el("div", { class: "small text-body-secondary mb-1" }, sm.icon("terminal"), " ", t("env.progress")),
            el("pre", { class: "sm-build-log mb-0", dataset: { sm: "env-progress" }, tabindex: "0" }))));
      build.addEventListener("click", () => startBuild(body.env, build));
      details.addEventListener("click", () => showDetails(body.env.name));
      return body;
    }

    function updateBody(body, env) {
      body.env = env;
      const building = isBuilding(env);
      body.querySelector('[data-sm="env-python"]').textContent = env.python_version || "—";
      const image = body.querySelector('[data-sm="env-image"]');
      image.textContent = env.image || "—";
      image.title = env.image || "";
      sm.setStatus(body.querySelector('[data-sm="status"]'), env.image_state);
      const error = env.image_error || (env.build && env.build.error) || "";
      const errorCell = body.querySelector('[data-sm="env-error"]');
      errorCell.textContent = error;
      errorCell.title = error;
      const build = body.querySelector('[data-sm="env-build"]');
      sm.setBusy(build, building);
      build.disabled = building || env.image_state === "no spec" || env.image_state === "invalid";
      const lines = (env.build && env.build.lines) || [];
      body.querySelector('[data-sm="env-progress-row"]').classList.toggle("d-none", !env.build);
      const log = body.querySelector('[data-sm="env-progress"]');
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      const text = lines.join("\n") || t("common.loading");
      if (log.textContent !== text) {
        log.textContent = text;
        if (atBottom) log.scrollTop = log.scrollHeight; // follow the build unless the reader scrolled up
      }
      const before = lastState.get(env.name);
      if (before === "building" && !building) {
        if (env.image_state === "built") sm.notify(t("env.build_done", { name: env.name }), "success");
        else sm.notify(t("env.build_failed", { name: env.name }), "danger");
      }
      lastState.set(env.name, building ? "building" : env.image_state);
    }

    async function load() {
      const result = await sm.fetch("/api/conda/environments");
      if (!result.ok) {
        sm.notify(sm.errorMessage(result), "warning");
        return result.status !== 401 && result.status !== 403;
      }
      const envs = (result.data.environments || []).filter((env) => env.image_state !== "no spec");
      if (result.data.base_image) {
        baseImage.querySelector("code").textContent = result.data.base_image;
        baseImage.classList.remove("d-none");
      }
      sm.syncChildren(table, envs, (env) => env.name, createBody, updateBody);
      empty.querySelector('[data-sm="env-loading"]').classList.add("d-none");
      empty.querySelector('[data-sm="env-none"]').classList.toggle("d-none", envs.length > 0);
      empty.classList.toggle("d-none", envs.length > 0);
      return envs.some(isBuilding); // keep polling while something builds
    }

    /** Load now and keep polling while a build runs. */
    function watch() {
      if (poller) poller.stop();
      poller = sm.every(POLL_MS, load);
    }

    refreshButton.addEventListener("click", async () => {
      sm.setBusy(refreshButton, true);
      const result = await sm.fetch("/api/conda/refresh", { method: "POST" });
      sm.setBusy(refreshButton, false);
      if (result.ok) sm.notify(t("env.refreshed"), "success");
      else sm.notify(sm.errorMessage(result), "danger");
      watch();
    });

    watch();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
