# The two commands of the README: `make demo` and `make test`. Each creates .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kiln-installed

.PHONY: demo test lint clean bytecode

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# bytecode for the editable install: an install from a wheel gets it from pip, and without it every
# kiln command compiles its modules again (~30 ms; more where PYTHONDONTWRITEBYTECODE is set)
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q src/kiln

demo: bytecode
	bash demo/run.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: lint bytecode
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .kiln-demo .pytest_cache .mypy_cache .ruff_cache
