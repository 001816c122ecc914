# The two commands a new user needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned exactly so pip takes the CPU wheel on disk instead of several GB of CUDA wheels.
PIP_INSTALL := $(BIN)/pip install --disable-pip-version-check -q

.PHONY: install install-dev bytecode demo test lint typecheck unit bench bench-quick bench-large clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP_INSTALL) -e '.[dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# The project is installed editable, so pip compiled none of its modules; where PYTHONDONTWRITEBYTECODE is set,
# every process (each CLI call a test or a user makes) would compile them again, about 0.3 s a call.
# compileall skips what is up to date.
bytecode: install
	$(BIN)/python -m compileall -q -j 0 mediamesh features orchestrator store tests bench examples >/dev/null

demo: install bytecode
	$(BIN)/mediamesh demo

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-dev
	$(BIN)/mypy

# Three workers on two cores: much of the suite waits on subprocesses and services (about 9.5 min here). Work
# stealing keeps one worker from ending the run alone on the slowest tests.
unit: install-dev bytecode
	$(BIN)/pytest -n 3 --dist worksteal

test: lint typecheck unit

# Every figure (bench/README.md has each benchmark's time).
bench: install-dev bytecode
	$(BIN)/python -m bench

# Every figure with fewer repeats and smaller sizes: a fast loop, not a measurement.
bench-quick: install-dev bytecode
	$(BIN)/python -m bench --quick

# The search figures at 1,000,000 vectors as well: an HNSW build of tens of minutes on two cores.
bench-large: install-dev bytecode
	$(BIN)/python -m bench --only search --large

clean:
	rm -rf $(VENV) .mediamesh .pytest_cache .mypy_cache .ruff_cache
