# sqlite-ml developer commands. Quick start: `make demo`, then `make test`.
#
# The first run creates .venv with $(PYTHON) and installs the package in editable mode
# with its test tools; it reinstalls whenever pyproject.toml changes (stamp file below).
# Only that pip install needs the network; every other target works offline.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sqlite-ml-installed
DEMO_DB ?= demo.db

.DEFAULT_GOAL := help
.PHONY: help install .venv demo test lint format clean bench bench-quick

help:
	@echo "make demo     create .venv if needed, install, run the demo into $(DEMO_DB)"
	@echo "make test     install, then ruff check, ruff format --check, mypy and pytest (native, then capi binding)"
	@echo "make lint     ruff check, ruff format --check and mypy only"
	@echo "make format   apply ruff's fixes and formatting to src, tests and benchmarks"
	@echo "make bench    benchmark against sqlite-ml 0.1.2 (about 10 min), table into benchmarks/RESULTS.md"
	@echo "make install  create .venv and pip install -e '.[test]' (again when pyproject.toml changes)"
	@echo "make clean    remove .venv, caches, build outputs and $(DEMO_DB)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The editable install also compiles the native extension (the C sources in csrc/) into
# src/sqlite_ml; it is rebuilt whenever one of them changes.
$(STAMP): pyproject.toml setup.py $(wildcard csrc/*.c csrc/*.h) | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[test]'
	touch $@

install .venv: $(STAMP)

demo: install
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm $(DEMO_DB)-journal
	$(BIN)/sqml demo $(DEMO_DB)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# The whole suite twice: in the default (native) binding, then in the ctypes fallback.
test: lint
	$(BIN)/python -m pytest -q
	SQLITE_ML_BINDING=capi $(BIN)/python -m pytest -q

format: install
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: install
	$(BIN)/python benchmarks/run.py --out benchmarks/RESULTS.md

bench-quick: install
	$(BIN)/python benchmarks/run.py --quick

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm $(DEMO_DB)-journal
	find src tests benchmarks examples -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -f src/sqlite_ml/_native*.so
