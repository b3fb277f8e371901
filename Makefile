# ScriptsManager: `make run` starts the app, `make test` runs the tests. Both set everything up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?= data

.PHONY: setup run test check assets images clean

setup: $(VENV)/.installed assets

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

run: setup $(DATA_DIR)/.secret_key
	SECRET_KEY="$${SECRET_KEY:-$$(cat $(DATA_DIR)/.secret_key)}" $(VENV)/bin/scriptsmanager images build --if-engine
	SECRET_KEY="$${SECRET_KEY:-$$(cat $(DATA_DIR)/.secret_key)}" $(VENV)/bin/scriptsmanager serve

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

check: setup
	$(VENV)/bin/ruff check manager tests bench
	$(VENV)/bin/ruff format --check manager tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) node_modules manager/static/vendor
