# The two commands a new user needs: `make demo` runs the main job on the
# bundled sample; `make test` runs the checks and the whole test suite. Both create or reuse .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo check test test-fast bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	FORECAST_HOME=$${FORECAST_HOME:-demo-home} bash scripts/demo.sh

# ruff (style and bugs), mypy (the whole package; strict on the typed boundaries), import-linter (the floors, see pyproject.toml)
check: $(STAMP)
	$(BIN)/ruff check forecast tests benchmarks cli.py
	$(BIN)/mypy
	$(BIN)/lint-imports

# pytest's exit 5 (no tests collected) fails too: a suite that ran nothing proves nothing
test: check
	$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$status

# the quick loop: skips the real Keras fits and the cron subprocesses
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_benchmarks.py

clean:
	rm -rf $(VENV) demo-home
