# xnatd: the contracts other people rely on (see docs/architecture.md).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
DATA ?= ./data

.PHONY: install run test lint typecheck layers unit integration compat bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -e '.[test,postgres,bench]'
	@touch $(STAMP)

run: install
	$(BIN)/xnatd serve --data $(DATA) --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

layers: install
	$(BIN)/lint-imports

test: install lint typecheck layers
	$(BIN)/pytest -q -p no:cacheprovider tests

bench: install
	$(BIN)/python -m bench.run --out bench/out

clean:
	rm -rf $(VENV) build *.egg-info
