# eloity-admin: `make run` (dashboard on the embedded demo database), `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format setup demo clean-data bench

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

# A development .env (git-ignored), written once, never overwritten: with it, the README's
# `python manage.py ...` lines work by hand once the virtualenv is active. Settings read it
# only while the environment sets none of DEBUG, SECRET_KEY and ALLOWED_HOSTS (production
# sets them), and only with its marker line.
.env:
	printf '%s\n' '# Local development only, written by make run / make demo (git-ignored).' \
	  '# Read only while the environment sets none of DEBUG, SECRET_KEY, ALLOWED_HOSTS.' \
	  'ELOITY_DEVELOPMENT_ONLY=1' 'DEBUG=1' > .env

demo: setup .env
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py load_demo

# The web server, one background worker (bulk "Provision all missing" jobs) and the
# watchdog every minute (its alerts on the console), then the provisioning ledger's
# catch-up (docs/performance.md) and the index of auth events' (docs/account.md). Jobs left unfinished by a stopped
# worker are queued again first; Ctrl+C stops all three.
run: demo
	@echo "Dashboard: http://$(HOST):$(PORT)/admin/"
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py resume_jobs
	@DEBUG=$${DEBUG:-1} $(BIN)/python manage.py db_worker --no-reload --interval 1 & worker=$$!; \
	(while true; do DEBUG=$${DEBUG:-1} $(BIN)/python manage.py provisioning_watchdog | grep --line-buffered '^alert:'; \
	  DEBUG=$${DEBUG:-1} $(BIN)/python manage.py provisioning_ledger --catch-up >/dev/null; \
	  DEBUG=$${DEBUG:-1} $(BIN)/python manage.py auth_events_index --catch-up >/dev/null; \
	  sleep 60; done) & watchdog=$$!; \
	trap 'kill $$worker $$watchdog 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py runserver $(HOST):$(PORT)

# Performance at scale (not part of `make test`): BENCH_USERS auth users in two shapes (with
# and without key indexes) at two missing-row ratios, plus the shape where the spec fills
# unique columns and the Eloity migration's shape (docs/performance.md); about 3 minutes at
# 20,000 (`make bench BENCH_USERS=20000`), longer than 15 at 1,000,000.
# Results: bench/results/*.json; docs/performance.md.
BENCH_USERS ?= 1000000
bench: setup
	$(BIN)/python bench/run.py --users $(BENCH_USERS) $(BENCH_ARGS)

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The browser tests drive Debian's Chromium (Playwright cannot download a browser of its
# own here): install the package when it is missing.
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	@echo "Installing Debian's chromium for the browser tests"
	@SUDO=""; if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium

test: lint $(CHROMIUM)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-data:
	rm -rf .data
