# xnatd: the contracts other people rely on (see docs/architecture.md).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
DATA ?= ./data

.PHONY: install install-system run test test-sqlite test-postgresql lint typecheck layers bench clean

install: $(STAMP)

# Debian packages the tests use (real PostgreSQL, curl, Chromium for the browser tests in tests/e2e;
# nginx, openssl and systemd-analyze for tests/e2e/test_deploy.py); installed only where missing (needs root).
install-system:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v curl >/dev/null && \
	  test -x /usr/bin/chromium && command -v storescu >/dev/null && command -v nginx >/dev/null && \
	  command -v openssl >/dev/null && command -v systemd-analyze >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql curl chromium dcmtk \
	    nginx openssl systemd >/dev/null; }

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

test: install install-system lint typecheck layers test-sqlite test-postgresql

test-sqlite: install
	$(BIN)/pytest -q -p no:cacheprovider tests

# The HTTP-level suites again, every server on a real PostgreSQL server started by the tests.
test-postgresql: install install-system
	XNATD_TEST_BACKEND=postgresql $(BIN)/pytest -q -p no:cacheprovider tests/integration tests/compat \
	  -m "not sqlite_only" --deselect tests/integration/test_bench_quick.py

bench: install
	@command -v Orthanc >/dev/null && command -v unzip >/dev/null && command -v storescp >/dev/null || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q orthanc unzip dcmtk)
	$(BIN)/python -m bench.run --out bench/out --only upload,zip,listing,import_zip,import_files,jobs,cstore,load,catalogue

clean:
	rm -rf $(VENV) build *.egg-info
