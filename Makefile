# MiniMQ developer commands. `make demo` runs everything; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo install test check lint typecheck layers bench bench-quick soak reliability-full clean churn

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/minimq up

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports pyproject.toml --no-cache

check: lint typecheck layers test

bench: $(STAMP)
	$(BIN)/minimq bench --profile

bench-quick: $(STAMP)
	$(BIN)/minimq bench --quick

soak: $(STAMP)
	$(BIN)/python -m bench.soak --minutes $(or $(MINUTES),5)

# Consumer-group churn checker (both modes), SECONDS of churn per mode.
churn: $(STAMP)
	$(BIN)/python -m bench.churn --seconds $(or $(SECONDS),150)

reliability-full: $(STAMP)
	MINIMQ_FULL_RELIABILITY=1 $(BIN)/python -m pytest -q -s tests/reliability
	$(BIN)/python -m bench.reliability.api_fuzz --examples 1000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
