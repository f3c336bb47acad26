# sqlite-ml developer commands. Quick start: `make demo`, then `make test`.
#
# `make demo` creates .venv with $(PYTHON) and installs the package in editable mode (the
# library, its command, the built-in embedding model and sqlite-vec); `make test` adds the
# test tools, and first installs the Debian packages the tests need when they are missing
# (scripts/install-system-packages.sh: as root or through sudo). Each pip install is
# repeated when pyproject.toml, setup.py or the C sources change (stamp files below). Only
# the installs need the network.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sqlite-ml-installed
TEST_STAMP := $(VENV)/.sqlite-ml-test-tools-installed
SOURCES := pyproject.toml setup.py $(wildcard csrc/*.c csrc/*.h)
DEMO_DB ?= demo.db

.DEFAULT_GOAL := help
.PHONY: help install install-test system-packages system-packages-demo .venv demo test lint format clean bench bench-quick

help:
	@echo "make demo     create .venv if needed, install sqlite-ml, run the demo into $(DEMO_DB)"
	@echo "make test     system packages, test tools, then ruff, mypy and pytest (native, then capi binding)"
	@echo "make lint     ruff check, ruff format --check and mypy only"
	@echo "make format   apply ruff's fixes and formatting to src, tests and benchmarks"
	@echo "make bench    benchmark against sqlite-ml 0.1.2 (about 10 min), table into benchmarks/RESULTS.md"
	@echo "make install  create .venv and pip install -e . (again when its sources change)"
	@echo "make clean    remove .venv, caches, build outputs and $(DEMO_DB)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The editable install also compiles the native extension (the C sources in csrc/) into
# src/sqlite_ml; it is rebuilt whenever one of them changes.
$(STAMP): $(SOURCES) | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[embeddings,vectors]'
	touch $@

# The library with the test tools (one install, which also serves `make demo`).
$(TEST_STAMP): $(SOURCES) | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[test]'
	touch $(STAMP) $@

install .venv: $(STAMP)

install-test: $(TEST_STAMP)

system-packages-demo:
	bash scripts/install-system-packages.sh demo

system-packages:
	bash scripts/install-system-packages.sh test

demo: system-packages-demo install
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm $(DEMO_DB)-journal
	$(BIN)/sqml demo $(DEMO_DB)

lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# The whole suite twice: in the default (native) binding, then in the ctypes fallback.
test: system-packages lint
	$(BIN)/python -m pytest -q
	SQLITE_ML_BINDING=capi $(BIN)/python -m pytest -q

format: install-test
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: install-test
	$(BIN)/python benchmarks/run.py --out benchmarks/RESULTS.md

bench-quick: install-test
	$(BIN)/python benchmarks/run.py --quick

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm $(DEMO_DB)-journal
	find src tests benchmarks examples -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -f src/sqlite_ml/_native*.so
