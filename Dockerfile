# The ScriptsManager manager: gunicorn (gevent worker) on port 5002.
#
# No registry is needed: BASE defaults to the Debian base the runner images use, built locally
# with `scriptsmanager images base` (debootstrap). Where a registry is reachable:
#   docker build --build-arg BASE=python:3.11-slim-bookworm -t scriptsmanager .
# `make image` prepares what the build copies (browser assets, a wheelhouse) and builds it.
ARG BASE=scriptsmanager-base:bookworm

# -- the Python environment, from a wheelhouse the host prepared (`make image` does it all:
#    the browser assets from the npm registry into manager/static/vendor, the wheels from PyPI
#    into build/wheelhouse; the build itself needs no network but Debian's mirror) --------------
FROM ${BASE} AS build
RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/scriptsmanager
ENV PATH=/opt/scriptsmanager/bin:$PATH
WORKDIR /src
COPY build/wheelhouse /wheelhouse
# The wheelhouse holds the manager's own wheel (with its browser assets) and its dependencies.
RUN pip install --no-cache-dir --quiet --no-index --find-links /wheelhouse \
        'scriptsmanager[kubernetes]' \
    && python -c "import importlib.resources as r; \
assert r.files('manager').joinpath('static/vendor/socket.io.min.js').is_file(), \
'browser assets missing from the wheel: run make image'"

# -- the runtime -------------------------------------------------------------------------------------
FROM ${BASE}
# iptables: the firewall rules that keep sessions off the host (and egress sessions off private
# ranges) are the one thing that needs root; see docker-compose.yml.
# postgresql-client: pg_dump for backups of PostgreSQL; fonts-dejavu-core: run logs as PDF.
RUN apt-get update -q && apt-get install -y -q --no-install-recommends iptables python3-venv \
    postgresql-client fonts-dejavu-core ca-certificates curl && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /srv/scriptsmanager --create-home sm
COPY --from=build /opt/scriptsmanager /opt/scriptsmanager
COPY migrations /opt/scriptsmanager-src/migrations
COPY runner-image /opt/scriptsmanager-src/runner-image
COPY conda-envs /opt/scriptsmanager-src/conda-envs
COPY script_groups /opt/scriptsmanager-src/script_groups
ENV PATH=/opt/scriptsmanager/bin:$PATH \
    SM_HOST=0.0.0.0 \
    SM_PORT=5002 \
    SM_DATA_DIR=/srv/scriptsmanager/data \
    SM_LOG_DIR=/srv/scriptsmanager/logs \
    SM_BACKUP_DIR=/srv/scriptsmanager/backup \
    SM_SCRIPT_GROUPS_DIR=/srv/scriptsmanager/script_groups \
    SM_CONDA_ENVS_DIR=/opt/scriptsmanager-src/conda-envs \
    SM_RUNNER_DIR=/opt/scriptsmanager-src/runner-image \
    SM_MIGRATIONS_DIR=/opt/scriptsmanager-src/migrations \
    PYTHONUNBUFFERED=1
WORKDIR /srv/scriptsmanager
USER sm
EXPOSE 5002
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${SM_PORT}/health" || exit 1
CMD ["scriptsmanager", "serve"]
