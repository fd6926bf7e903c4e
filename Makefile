# Every target bootstraps .venv itself: a fresh machine needs only python3.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@echo "== examples/store_tour.py: lifecycles in the embedded store, driven from the shell"
	@$(PY) examples/store_tour.py
	@echo
	@echo "== examples/quickstart.py: a lifecycle of your own, subclassed and driven"
	@$(PY) examples/quickstart.py
	@echo
	@echo "== examples/dataflow_monitor.py: recorded Dataflow polls through DataflowJob.sync"
	@$(PY) examples/dataflow_monitor.py
	@echo
	@echo "== examples/work_chain.py: a WorkManager chain with retry, failure and APPEND"
	@$(PY) examples/work_chain.py

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

test: lint typecheck
	$(PY) -m pytest

# make bench ARGS="--suite core" (a group, a suite name or a glob; --quick, --rounds N, --list)
bench: $(STAMP)
	$(PY) tests/benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache
