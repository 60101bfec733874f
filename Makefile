# `make run` and `make test` are the only commands a fresh clone needs: each creates .venv and
# installs what is missing first (re-installing only when a requirements file changes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

# Some machines set PYTHONDONTWRITEBYTECODE: then every test worker and every process a test starts
# compiles Django and the project from source again, and pytest cannot cache its rewritten test
# modules (collection alone: 13 s instead of 5 s per worker).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-sqlite test-postgresql lint format clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12))' || \
		{ echo "Python 3.12 or newer is needed: set PYTHON=python3.12 (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(PIP) install -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(PIP) install -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@# The site's address and first steps come last, from the supervisor once the web server answers
	@# (printed here, they scrolled away under the processes' start-up output); so does what
	@# cosmos_setup said (the admin password it made, shown once), which no process started gets.
	@setup="$$($(BIN)/python manage.py cosmos_setup)" && echo "$$setup" && \
		echo "Starting the web server, a queue worker and its scheduler (python -m cosmos_site.supervisor)" && \
		PATH="$(CURDIR)/$(BIN):$$PATH" COSMOS_HOST=$(HOST) COSMOS_PORT=$(PORT) COSMOS_SETUP_NOTE="$$setup" \
		$(BIN)/python -m cosmos_site.supervisor --home http://$(HOST):$(PORT)/

# The scale-out profile's database: the queue, scheduler and model tests run on it again. Of the
# launch takeover tests, those where workers race each other for a launch (row locks, transactions);
# the one where a single worker keeps its claim through a stalled node waits out four stale windows
# and proves nothing more on PostgreSQL.
SCALEOUT_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
SCALEOUT_TESTS := tests/runs/test_queue.py tests/runs/test_scheduler.py tests/runs/test_batches.py \
	tests/runs/test_run_model.py tests/runs/test_progress_model.py tests/prompts \
	tests/runs/admin tests/runs/commands/test_cosmos_search.py tests/runs/test_prompt_deletion.py \
	tests/runs/test_api.py tests/runs/test_input_access.py tests/nodes/test_gpunode_model.py \
	tests/runs/test_progress_after_end.py tests/runs/test_launch_recovery.py tests/runs/test_reconcile.py \
	tests/runs/test_launch_takeover.py::test_it_takes_over_a_launch_whose_worker_died_and_never_starts_a_job_twice \
	tests/migrations tests/runs/test_api_captions.py tests/runs/test_queue_position.py tests/runs/test_run_durations.py \
	tests/runs/test_sweep_create.py tests/runs/datasets/test_selection.py tests/webhooks/test_webhook_services.py

# The two passes run side by side (pytest-xdist workers in each; see tests/conftest.py): most tests
# wait on subprocesses, sshd or a browser, so the machine's cores have room for both. The PostgreSQL
# pass has a sixth of the work and two workers (each worker's start, collection and test database
# cost about six CPU seconds); it still ends well before the SQLite pass. -O prints each pass's
# output whole when it ends.
test: $(VENV)/.dev lint
	@$(MAKE) --no-print-directory -j2 -O test-sqlite test-postgresql

test-sqlite: $(VENV)/.dev
	$(BIN)/pytest --durations=10

test-postgresql: $(VENV)/.dev
	@if $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then \
		echo "The same queue tests on PostgreSQL:"; \
		DATABASE_URL=$(SCALEOUT_DATABASE_URL) $(BIN)/pytest -n 2 --durations=5 $(SCALEOUT_TESTS); \
	elif [ "$$COSMOS_REQUIRE_SCALEOUT" = 1 ]; then \
		echo "PostgreSQL is needed on 127.0.0.1:5432 for the scale-out tests"; exit 1; \
	else \
		echo "Skipped the PostgreSQL pass: nothing listens on 127.0.0.1:5432"; \
	fi

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
