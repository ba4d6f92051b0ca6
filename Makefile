# Two commands do all the set-up on a fresh Debian/Ubuntu/JetPack machine:
#   make demo   set up, then run the main job on the embedded default
#   make test   set up, then run lint and every test
# Everything generated (.venv, engines/*) is rebuilt by these targets, never committed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo photos bench test setup setup-test models lint clean

demo: setup
	$(BIN)/edge demo

photos: setup
	$(BIN)/edge demo --photos

# the whole loop on 1, 3 and 10-face clips, the study-literal baseline, a 30-minute soak
bench: setup
	$(BIN)/python tools/bench.py --soak-minutes $(or $(SOAK),30) --json bench.json --png bench.png

test: setup-test lint
	$(BIN)/python -m pytest

setup:
	PYTHON=$(PYTHON) VENV=$(VENV) bash tools/bootstrap.sh

setup-test:
	PYTHON=$(PYTHON) VENV=$(VENV) bash tools/bootstrap.sh --test

models: setup

# style, the import layers (pyproject's [tool.importlinter]) and the types of edge/ and tools/
lint: setup-test
	$(BIN)/ruff check edge tools tests
	$(BIN)/lint-imports --no-cache
	$(BIN)/basedpyright --pythonpath $(BIN)/python

clean:
	rm -rf $(VENV) engines/*.onnx engines/*.dat engines/manifest.json engines/.cache \
	       .pytest_cache .ruff_cache
