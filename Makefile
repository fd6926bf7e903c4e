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

# The suite runs twice: on the compiled event path (the default), then with
# LIFECYCLEKIT_ENGINE=psm on python-statemachine's engine. The second run leaves out what does
# not exercise the engine differently: building and installing the wheel (test_packaging),
# the multi-process store runs (store/test_concurrency; store/test_store covers send on both
# back-ends), the PostgreSQL server stop/restart test (store/test_faults: the driver's and
# the server's behaviour) and the benchmark smoke test; tests marked compiled_path (test_fast,
# test_differential, test_generated_machines, test_planted_deviations) compare both engines
# within one run and deselect themselves.
PSM_RUN_SKIPS := --ignore=tests/test_packaging.py --ignore=tests/store/test_concurrency.py \
	--ignore=tests/store/test_faults.py --ignore=tests/test_benchmarks_smoke.py

test: lint typecheck
	$(PY) -m pytest
	LIFECYCLEKIT_ENGINE=psm $(PY) -m pytest -q $(PSM_RUN_SKIPS)

# make bench ARGS="--suite core" (a group, a suite name or a glob; --quick, --rounds N, --list)
bench: $(STAMP)
	$(PY) tests/benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache
