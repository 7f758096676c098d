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

.PHONY: install lock run demo test lint typecheck unit clients i18n bench-tally bench-tally-db bench-vote bench-hostile clean

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

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q

test: lint typecheck unit

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

clean:
	rm -rf $(VENV) $(UV_TOOLS) .mypy_cache .ruff_cache .pytest_cache *.egg-info
