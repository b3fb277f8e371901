"""The JupyterHub reference's hub: DockerSpawner on the run's own network, driven by a token.

Mounted read-only into the hub container by ``bench_jupyterhub.py``, which sets the
``SMBENCH_JH_*`` variables (the token is generated for each run). The benchmark is a service
with an API token that may create users and start, stop and reach their servers; the
DummyAuthenticator is there only because the hub needs one (nobody logs in).
"""

import os

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - JupyterHub provides it

run = os.environ["SMBENCH_JH_RUN"]
labels = {"io.scriptsmanager.bench": "jupyterhub", "io.scriptsmanager.bench.run": run}

# configurable-http-proxy runs in its own container (started first, with the same
# CONFIGPROXY_AUTH_TOKEN), as zero-to-jupyterhub runs it in its own pod.
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = f"http://{os.environ['SMBENCH_JH_PROXY_NAME']}:8001"
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_ip = os.environ["SMBENCH_JH_HUB_NAME"]
c.JupyterHub.db_url = "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [{"name": "smbench", "api_token": os.environ["SMBENCH_JH_TOKEN"]}]
c.JupyterHub.load_roles = [
    {
        "name": "smbench",
        "scopes": ["admin:users", "admin:servers", "access:servers"],
        "services": ["smbench"],
    }
]

c.JupyterHub.spawner_class = "docker"
c.DockerSpawner.image = os.environ["SMBENCH_JH_IMAGE"]
c.DockerSpawner.pull_policy = "never"  # there is no registry: the image is built locally
c.DockerSpawner.network_name = os.environ["SMBENCH_JH_NETWORK"]
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.remove = True
c.DockerSpawner.prefix = f"smbench-jh-{run}"
c.DockerSpawner.extra_create_kwargs = {"labels": labels}
# JupyterHub gives a server 60 s to start and 30 s more to answer; on a loaded machine the
# single-user server's imports alone can take longer: wait as long as the benchmark does.
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
