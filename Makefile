# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalls whenever pyproject.toml changes.
$(STAMP): pyproject.toml clients/python/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e './clients/python[llama-index,langchain]'
	touch $@

install: $(STAMP)

## Start Vouch on its embedded defaults with demo data at http://127.0.0.1:8000
run: install
	$(BIN)/vouch migrate
	$(BIN)/vouch demo
	$(BIN)/vouch serve

## Static checks, then the whole test suite on every core (PostgreSQL cases need VOUCH_TEST_POSTGRES_URL)
# Each xdist worker has its own PostgreSQL database and data dirs; worksteal evens out slow tests.
test: install check
	$(BIN)/pytest -n auto --dist worksteal

check: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
