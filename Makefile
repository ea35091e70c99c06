# MiniMQ developer commands. `make demo` runs everything; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make demo` needs only what running needs: MiniMQ and its runtime
# dependencies, no test, lint or benchmark tools (a first run in seconds).
RUN_STAMP := $(VENV)/.installed-run

.PHONY: demo install test check lint typecheck layers bench bench-quick bench-kafka soak reliability-full clean churn docker-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $(RUN_STAMP)

install: $(STAMP)

demo: $(RUN_STAMP)
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

bench-kafka: $(STAMP)
	$(BIN)/python bench/kafka.py --profile

soak: $(STAMP)
	$(BIN)/python -m bench.soak --minutes $(or $(MINUTES),5)

# Consumer-group churn checker (both modes), SECONDS of churn per mode.
churn: $(STAMP)
	$(BIN)/python -m bench.churn --seconds $(or $(SECONDS),150)

# The image and docker-compose.yaml run by a real Docker engine (root; starts
# dockerd when none runs, and builds an offline Debian base when no registry answers).
docker-check: $(STAMP)
	$(BIN)/python deploy/docker/check.py

reliability-full: $(STAMP)
	MINIMQ_FULL_RELIABILITY=1 $(BIN)/python -m pytest -q -s tests/reliability
	$(BIN)/python -m bench.reliability.api_fuzz --examples 1000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
