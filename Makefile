# orchcap: `make run` serves the app, `make test` runs the suite. Both bootstrap .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench venv lock clean-venv

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "orchcap needs Python 3.11 or newer")'
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# The browser tests (tests/browser) drive Debian's chromium. `.ci/run` installs it when missing;
# without it `make test` runs everything else and says plainly that the browser tests did not run
# (under CI=true a missing chromium fails instead).
CHROMIUM ?= $(or $(ORCHCAP_TEST_CHROMIUM),/usr/bin/chromium)
NO_CHROMIUM = no chromium at $(CHROMIUM): the browser tests (tests/browser) were NOT run; install it with 'sudo apt-get install chromium' (or set ORCHCAP_TEST_CHROMIUM) and run make test again

# Test workers: each starts its own embedded PostgreSQL and broker; a module's tests stay together.
TEST_WORKERS ?= 2

venv: $(STAMP)

run: $(STAMP)
	$(PY) manage.py up

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@# makemigrations checks the history against a database: a throwaway embedded one.
	@tmp=$$(mktemp -d); ORCHCAP_DATA_DIR=$$tmp $(PY) manage.py makemigrations --check --dry-run; rc=$$?; \
	  ORCHCAP_DATA_DIR=$$tmp $(PY) manage.py engines stop >/dev/null; rm -rf "$$tmp"; exit $$rc
	@if [ -x "$(CHROMIUM)" ]; then $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadscope; \
	elif [ -n "$$CI" ]; then echo "$(NO_CHROMIUM)" >&2; exit 1; \
	else $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadscope --ignore=tests/browser; rc=$$?; \
	  echo; echo "$(NO_CHROMIUM)" >&2; exit $$rc; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) bench/run.py

# Refresh the pinned versions after changing pyproject.toml's ranges.
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^-e ' > constraints.txt

clean-venv:
	rm -rf $(VENV)
