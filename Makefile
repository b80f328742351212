# The two commands: `make run` (the product on embedded defaults) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup setup-dev migrate verify bench-ledger clean

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

## run: set up, migrate, create genesis and serve on http://$(HOST):$(PORT)/
run: migrate
	@echo "Serving on http://$(HOST):$(PORT)/  (Ctrl-C stops)"
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) aethir_web.asgi:application

## test: set up what the tests need and run the suite (SQLite, then PostgreSQL + Redis)
test: setup-dev
	scripts/test

verify: setup
	$(PY) manage.py verify_ledger

bench-ledger: setup-dev
	$(PY) bench/ledger.py

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .hypothesis
