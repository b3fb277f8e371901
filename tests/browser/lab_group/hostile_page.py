"""
ScriptsManager Metadata:
@description: A page that tries to use the viewer's manager login (origin-isolation test)
@required_level: operator
@category: tests
@flask_port: auto
"""

# The page runs every attack an operator-level script could try against whoever opens it, and
# writes what happened into #results. Nothing here should succeed.
PAGE = """<!doctype html><html><head><title>hostile</title></head><body>
<pre id="results">running</pre>
<script>
(async () => {
  const manager = location.protocol + "//localhost:" + location.port;
  const out = {};
  async function attempt(name, run) {
    try { out[name] = await run(); } catch (e) { out[name] = "blocked: " + e.name; }
  }
  await attempt("same_origin_csrf", async () => (await fetch("/api/auth/csrf")).status);
  await attempt("same_origin_admin_users", async () =>
    (await fetch("/api/admin/users", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({username: "pwned1", password: "pwned-password-1", user_level: "admin",
                            email: "p1@example.org"})})).status);
  await attempt("manager_user", async () =>
    (await (await fetch(manager + "/api/auth/user", {credentials: "include"})).text()));
  await attempt("manager_csrf", async () =>
    (await (await fetch(manager + "/api/auth/csrf", {credentials: "include"})).text()));
  await attempt("manager_admin_logs", async () =>
    (await fetch(manager + "/api/admin/logs/execution", {credentials: "include"})).status);
  await attempt("manager_create_admin", async () => {
    const r = await fetch(manager + "/api/admin/users", {method: "POST", mode: "no-cors",
      credentials: "include", headers: {"Content-Type": "text/plain"},
      body: JSON.stringify({username: "pwned2", password: "pwned-password-2",
                            user_level: "admin", email: "p2@example.org"})});
    return r.type;
  });
  await attempt("manager_mint_token", async () => {
    const form = new URLSearchParams({name: "stolen"});
    const r = await fetch(manager + "/api/user/tokens", {method: "POST", mode: "no-cors",
      credentials: "include", body: form});
    return r.type;
  });
  await attempt("other_session", async () =>
    (await (await fetch(new URLSearchParams(location.search).get("other"),
                        {credentials: "include"})).text()).slice(0, 80));
  await attempt("cookies", async () => document.cookie);
  await attempt("frame_manager", () => new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.src = manager + "/admin/users";
    frame.onload = () => {
      try { resolve("read: " + frame.contentDocument.body.innerText.slice(0, 80)); }
      catch (e) { resolve("blocked: " + e.name); }
    };
    setTimeout(() => resolve("blocked: timeout"), 3000);
    document.body.appendChild(frame);
  }));
  document.getElementById("results").textContent = JSON.stringify(out);
})();
</script></body></html>"""


@app.route("/")  # noqa: F821 - the runner injects `app`
def index():
    return PAGE
