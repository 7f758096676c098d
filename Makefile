# `make run` and `make test` work on a fresh clone with Python 3.11+, make and the package index.
# Installs come from uv.lock (`uv sync --frozen`): everyone gets the same versions until
# `make lock` refreshes them.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# uv from PATH if there is one; otherwise this pinned uv in its own small venv. Not in .venv:
# `uv sync` would remove it there, since it is not in the lock.
UV_VERSION := 0.13.9
UV_TOOLS := .uv
UV ?= $(or $(shell command -v uv 2>/dev/null),$(UV_TOOLS)/bin/uv)
# The project environment is .venv here, whatever the caller's environment says.
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install lock run demo test test-fast lint typecheck unit clients image deploy-check docs i18n bench-tally bench-tally-db bench-vote bench-observability bench-hostile clean

install: $(STAMP)

$(UV_TOOLS)/bin/uv:
	$(PYTHON) -m venv $(UV_TOOLS)
	$(UV_TOOLS)/bin/python -m pip install --quiet 'uv==$(UV_VERSION)'

# The project (editable, with the `wijkbudget` command) and the dev group, exactly as locked.
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $(STAMP)

# Newest versions the pyproject ranges allow; commit uv.lock after a green `make test`.
# After editing pyproject.toml's dependencies, `make lock UPGRADE=` locks only the change.
UPGRADE ?= --upgrade
lock: | $(UV)
	$(UV) lock $(UPGRADE)

# Dutch and English messages (app/core/i18n.py): extract every N_("...") and _t("...") in
# app/ into app/locales/messages.pot and merge it into the Dutch .po; then translate the new
# or changed entries there (empty or `#, fuzzy` ones). The app reads the .po as it is.
i18n: install
	$(BIN)/pybabel extract -F babel.cfg --no-default-keywords -k _t -k N_ \
		--add-location=file --sort-by-file --no-wrap --project=Wijkbudget \
		-o app/locales/messages.pot .
	$(BIN)/pybabel update -i app/locales/messages.pot -d app/locales -D messages \
		--no-wrap --ignore-obsolete

run: install
	$(BIN)/wijkbudget serve --host $(HOST) --port $(PORT)

demo: install
	$(BIN)/wijkbudget demo

lint: install
	$(UV) lock --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy
	$(BIN)/mypy --strict ci/smoke.py

unit: install
	$(BIN)/pytest -q

test: lint typecheck unit

# The inner loop: everything but the tests marked slow (real servers, a browser, fuzzing,
# large elections), on both cores. `make test` stays the whole suite.
test-fast: install
	$(BIN)/pytest -q -n 2 -m "not slow"

# The documentation site: the API reference generated from the OpenAPI document, then
# MkDocs in strict mode (a broken link or anchor fails). Output in site/.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/python docs/gen_reference.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The Docker image, built with podman (ci/image.sh: bootstraps the base where none can be pulled).
image:
	bash ci/image.sh wijkbudget:latest

# Upgrade from the previous release, expand/contract, backup and restore, and the image, on
# the PostgreSQL of 127.0.0.1:5432 (SKIP_IMAGE=1 leaves the image out).
deploy-check: install
	bash ci/deploy.sh

# Generated TypeScript and Python clients build and run the resident journey (needs node).
clients: install
	bash clients/check.sh

bench-tally: install
	$(BIN)/python -m bench.tally

# The files built to make Equal Shares slow (issue 18), before (c412ce2) and after.
bench-hostile: install
	$(BIN)/python -m bench.hostile_tally --before c412ce2

bench-tally-db: install
	$(BIN)/python -m bench.tally_db

bench-vote: install
	@command -v wrk >/dev/null || (apt-get install -y wrk || (apt-get update && apt-get install -y wrk))
	$(BIN)/python -m bench.vote_load

# Logging and metrics against the same server without them (same run, wrk if installed).
bench-observability: install
	@command -v wrk >/dev/null || (apt-get install -y wrk || (apt-get update && apt-get install -y wrk))
	$(BIN)/python -m bench.observability

clean:
	rm -rf $(VENV) $(UV_TOOLS) .mypy_cache .ruff_cache .pytest_cache *.egg-info
