# Two commands do everything on a fresh machine:
#   make run    set up .venv, then run the default benchmark (CPU, embedded data, offline)
#   make test   set up .venv, then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-all lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned with pip: the CPU wheel lies on local disk (uv would download CUDA).
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/mclbench run --config configs/default.yaml

test: setup
	$(BIN)/python -m pytest -q

test-all: setup
	$(BIN)/python -m pytest -q -m ''

lint: setup
	$(BIN)/ruff check harness methods tasks tests benchmarks
