# emgfeedback: every target sets up what it needs first (scripts/setup.sh), so on a fresh Debian
# machine `make demo` and `make test` are the only two commands a person has to know.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help setup demo test test-fast bench firmware sim lint typecheck clean

help:
	@echo "make demo       set up and start the live demo on the simulated board"
	@echo "make test       set up and run the whole test suite"
	@echo "make bench      set up and run the benchmarks (writes docs/benchmarks.md)"
	@echo "make firmware   build the Arduino firmware with Debian's arduino-mk"
	@echo "make lint       layer contracts (import-linter) and ruff"

setup:
	@bash scripts/setup.sh test,video,sound

demo: setup
	$(VENV)/bin/emgfeedback demo $(DEMO_ARGS)

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)
	$(PY) -m mypy
	$(LINT)

# The rooms keep their rules (pyproject [tool.importlinter], docs/architecture.md) and ruff's.
LINT = $(VENV)/bin/lint-imports --no-cache && $(PY) -m ruff check --no-cache src tests bench

lint: setup
	$(LINT)

test-fast: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench:
	@bash scripts/setup.sh test,bench,video,sound
	QT_QPA_PLATFORM=offscreen $(PY) bench/run.py --out docs/benchmarks.md

firmware:
	$(MAKE) -C firmware

typecheck: setup
	$(PY) -m mypy

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache src/*.egg-info
