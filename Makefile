# Set-up and entry points named by the README's Quick start.
# torch==2.13.0 (CPU build) is installed first so that no dependency pulls a CUDA build.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup bench-setup demo test bench

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

# Peers without their pins (see pyproject's bench extra), then the pure-Python packages they import.
$(VENV)/.bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps spikingjelly sinabs pbr
	$(BIN)/python -m pip install --quiet scipy tqdm loguru requests
	touch $(VENV)/.bench

bench-setup: $(VENV)/.bench

bench: $(VENV)/.bench
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done
