# The two commands: `make run` (the product on embedded defaults) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve test setup setup-dev migrate verify clean

$(VENV)/.stamp-runtime: requirements.txt
	@test -x $(PY) || $$(scripts/find-python) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.stamp-dev: $(VENV)/.stamp-runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

setup: $(VENV)/.stamp-runtime

setup-dev: $(VENV)/.stamp-dev
	@scripts/install-chromium

migrate: setup
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py genesis

## run: set up, migrate, genesis, seed the demo network, then serve it alive on http://$(HOST):$(PORT)/
run: setup
	$(PY) manage.py run_demo --host $(HOST) --port $(PORT)

## serve: only the web server, on whatever the database holds
serve: migrate
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) aethir_web.asgi:application

## test: set up what the tests need and run the suite (SQLite, then PostgreSQL + Redis)
test: setup-dev
	scripts/test

verify: setup
	$(PY) manage.py verify_ledger

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .hypothesis
