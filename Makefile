# ScriptsManager: `make run` starts the app, `make test` runs the tests. Both set everything up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?= data

.PHONY: setup run test check assets images image clean preflight host-check bench

setup: preflight $(VENV)/.installed assets

# What setting up needs on the host; a missing tool is named here, not deep in a failed step.
preflight:
	@missing=""; \
	if ! command -v $(PYTHON) >/dev/null 2>&1; then missing="$$missing\n  - Python 3.11+ ($(PYTHON)): apt-get install python3 python3-venv"; \
	elif ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
	  missing="$$missing\n  - Python 3.11 or newer ($(PYTHON) is $$($(PYTHON) -V 2>&1))"; \
	elif ! $(PYTHON) -c 'import venv, ensurepip' 2>/dev/null; then missing="$$missing\n  - the venv module: apt-get install python3-venv"; fi; \
	command -v npm >/dev/null 2>&1 || missing="$$missing\n  - Node.js and npm (browser assets): apt-get install nodejs npm"; \
	if [ -n "$$missing" ]; then printf "make: missing on this host:$$missing\n" >&2; exit 1; fi

# What running scripts needs; the manager starts without it, so these are warnings.
host-check:
	@command -v docker >/dev/null 2>&1 || command -v dockerd >/dev/null 2>&1 || \
	  echo "warning: Docker is not installed: the manager starts, but no script can run (apt-get install docker.io)" >&2; \
	command -v iptables >/dev/null 2>&1 || \
	  echo "warning: iptables is not installed: sessions could reach services on this host (apt-get install iptables)" >&2; \
	command -v debootstrap >/dev/null 2>&1 || \
	  echo "warning: debootstrap is not installed: without it the runner base image must be pulled (apt-get install debootstrap)" >&2; \
	true

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Browser assets from the npm registry (never committed): Bootstrap Icons, Socket.IO client.
assets: manager/static/vendor/.built

manager/static/vendor/.built: package.json
	npm install --no-audit --no-fund --loglevel=error
	npm run --silent build
	touch $@

# A stable random SECRET_KEY for local runs, kept out of the repository.
$(DATA_DIR)/.secret_key:
	mkdir -p $(DATA_DIR)
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $@

run: host-check setup $(DATA_DIR)/.secret_key
	SECRET_KEY="$${SECRET_KEY:-$$(cat $(DATA_DIR)/.secret_key)}" $(VENV)/bin/scriptsmanager images build --if-engine
	SECRET_KEY="$${SECRET_KEY:-$$(cat $(DATA_DIR)/.secret_key)}" $(VENV)/bin/scriptsmanager serve

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

check: setup
	$(VENV)/bin/ruff check manager tests bench
	$(VENV)/bin/ruff format --check manager tests bench
	$(VENV)/bin/mypy

# Load, density, soak, proxy and session-start figures in one table (bench/README.md).
# BENCH_SCALE=quick for a short run; the full one takes about 45 minutes. Never fails.
BENCH_SCALE ?= full
bench: setup
	-BENCH_SCALE=$(BENCH_SCALE) $(PY) bench/run_all.py

# The manager's image (Dockerfile): browser assets and a wheelhouse from the registries on this
# host, then a build that needs nothing but Debian's mirror. IMAGE=name:tag to rename it.
IMAGE ?= scriptsmanager:latest
image: setup
	rm -rf build/wheelhouse
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir build/wheelhouse .
	# Dependencies for the image's Python: Debian bookworm's 3.11.2.
	$(PY) -m pip download --quiet --only-binary=:all: --python-version 3.11.2 \
		--dest build/wheelhouse "$$(ls build/wheelhouse/scriptsmanager-*.whl)[kubernetes]" \
		'async-timeout>=4.0.3'  # redis wants it below 3.11.3; markers follow this host
	docker build -t $(IMAGE) .

clean:
	rm -rf $(VENV) node_modules manager/static/vendor
