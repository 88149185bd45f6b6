# xnatd: the contracts other people rely on (see docs/architecture.md).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
DATA ?= ./data

# Installs go through uv (PyPI's `uv`, pinned here) from the lock file `uv.lock`: the same versions for
# `make run` and `make test`, on every machine. uv itself is installed into .tools/ (by the system's pip,
# else by a throwaway virtualenv's).
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
# What a site runs: the server and its PostgreSQL driver and dask-jobqueue (see docs/deploy.md).
RUNTIME_EXTRAS := --extra postgres --extra jobqueue
# What the tests and benchmarks need on top (Playwright, the real clients, linters...).
DEV_EXTRAS := $(RUNTIME_EXTRAS) --extra test --extra bench
# --inexact: `make run` after `make test` keeps the test packages; the lock pins everything either way.
SYNC := UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --inexact --python $(PY) --quiet
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
RESULTS := build/test-results

.PHONY: install install-dev install-system run test test-sqlite test-postgresql lint typecheck layers \
	test-sqlite-part-1 test-sqlite-part-2 \
	bench lock wheel container clean

install: $(RUNTIME_STAMP)

install-dev: $(DEV_STAMP)

$(UV):
	@$(PY) -m pip install --quiet --disable-pip-version-check --target $(TOOLS) uv==$(UV_VERSION) 2>/dev/null || \
	  { $(PY) -m venv $(TOOLS)/venv && $(TOOLS)/venv/bin/pip install --quiet --target $(TOOLS) uv==$(UV_VERSION); }

$(RUNTIME_STAMP): pyproject.toml uv.lock | $(UV)
	$(SYNC) $(RUNTIME_EXTRAS)
	@touch $@

$(DEV_STAMP): pyproject.toml uv.lock | $(UV)
	$(SYNC) $(DEV_EXTRAS)
	@touch $@ $(RUNTIME_STAMP)

# After a change of the dependencies in pyproject.toml: pin them (and everything they need) anew.
lock: | $(UV)
	$(UV) lock

# Debian packages the tests use (real PostgreSQL, curl, Chromium for the browser tests in tests/e2e;
# nginx, openssl and systemd-analyze for tests/e2e/test_deploy.py; podman and debootstrap for
# tests/e2e/test_container.py); installed only where missing (needs root).
install-system:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v curl >/dev/null && \
	  test -x /usr/bin/chromium && command -v storescu >/dev/null && command -v nginx >/dev/null && \
	  command -v openssl >/dev/null && command -v systemd-analyze >/dev/null && \
	  command -v podman >/dev/null && command -v debootstrap >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql curl chromium dcmtk \
	    nginx openssl systemd podman debootstrap >/dev/null; }

run: install
	$(BIN)/xnatd serve --data $(DATA) --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy

layers: install-dev
	$(BIN)/lint-imports

# Every step runs even when an earlier one failed (a failing SQLite suite must not hide the
# PostgreSQL one); the summary at the end names each step's result, and make fails if any failed.
# The suites run in two lanes side by side, about equally long (each is mostly one pytest process
# waiting on the servers it started, so two fit on two cores): the SQLite suite's first part in the
# console (after lint, typecheck and layers); the PostgreSQL suite, then the SQLite suite's second part,
# in build/test-results/lane-2.log, printed when both lanes have ended.
CHECKS := lint typecheck layers
# One integration module runs in the first part, so that both lanes take about as long.
LANE_1_INTEGRATION := tests/integration/test_bench_quick.py
SQLITE_PART_1 := tests/unit tests/fuzz tests/e2e tests/compat $(LANE_1_INTEGRATION)
SQLITE_PART_2 := tests/integration $(LANE_1_INTEGRATION:%=--ignore=%)
test: install-dev install-system
	@rm -rf $(RESULTS); mkdir -p $(RESULTS); \
	step() { if $(MAKE) --no-print-directory $$1; then echo passed > $(RESULTS)/$$1.status; \
	  else echo FAILED > $(RESULTS)/$$1.status; fi; }; \
	echo "=== lane 2 in the background (test-postgresql, then test-sqlite-part-2): $(RESULTS)/lane-2.log"; \
	{ step test-postgresql; step test-sqlite-part-2; } > $(RESULTS)/lane-2.log 2>&1 & lane=$$!; \
	for s in $(CHECKS); do echo "=== make $$s"; step $$s; done; \
	echo "=== make test-sqlite-part-1"; step test-sqlite-part-1; wait $$lane; \
	echo "=== lane 2 (its output)"; cat $(RESULTS)/lane-2.log; \
	cat $(RESULTS)/test-sqlite-part-*.status | grep -qv passed && echo FAILED > $(RESULTS)/test-sqlite.status \
	  || echo passed > $(RESULTS)/test-sqlite.status; \
	$(BIN)/python -m tests.support.summary $(RESULTS)/sqlite-1.xml $(RESULTS)/sqlite-2.xml \
	  > $(RESULTS)/test-sqlite.summary; \
	echo "=== make test summary"; failed=""; \
	for s in $(CHECKS) test-sqlite test-postgresql; do \
	  printf '%-16s %-7s %s\n' $$s "$$(cat $(RESULTS)/$$s.status)" "$$(cat $(RESULTS)/$$s.summary 2>/dev/null)"; \
	  grep -q passed $(RESULTS)/$$s.status || failed="$$failed $$s"; \
	done; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi; echo "make test: all passed"

PYTEST := $(BIN)/pytest -q -p no:cacheprovider

# The whole SQLite suite in one run (make test runs it in the two parts below, in two lanes).
test-sqlite: install-dev
	@mkdir -p $(RESULTS)
	$(PYTEST) --junitxml=$(RESULTS)/sqlite.xml tests; rc=$$?; \
	  $(BIN)/python -m tests.support.summary $(RESULTS)/sqlite.xml > $(RESULTS)/test-sqlite.summary; exit $$rc

test-sqlite-part-1 test-sqlite-part-2: install-dev
	@mkdir -p $(RESULTS)
	$(PYTEST) --junitxml=$(RESULTS)/sqlite-$(@:test-sqlite-part-%=%).xml $(SQLITE_PART_$(@:test-sqlite-part-%=%))

# The HTTP-level suites again, every server on a real PostgreSQL server started by the tests.
test-postgresql: install-dev install-system
	@mkdir -p $(RESULTS)
	XNATD_TEST_BACKEND=postgresql $(PYTEST) --junitxml=$(RESULTS)/postgresql.xml tests/integration tests/compat \
	  -m "not sqlite_only" --deselect tests/integration/test_bench_quick.py; rc=$$?; \
	  $(BIN)/python -m tests.support.summary $(RESULTS)/postgresql.xml > $(RESULTS)/test-postgresql.summary; \
	  exit $$rc

bench: install-dev
	@command -v Orthanc >/dev/null && command -v unzip >/dev/null && command -v storescp >/dev/null || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q orthanc unzip dcmtk)
	$(BIN)/python -m bench.run --out bench/out --only upload,zip,listing,import_zip,import_files,jobs,cstore,load,catalogue

# A wheel in dist/ (templates, static files and migrations inside): `pipx install dist/xnatd-*.whl`.
wheel: install-dev
	$(BIN)/python -m build --wheel --outdir dist .

# The container image (Containerfile; docs/deploy.md, "Containers"): the wheel and the lock's versions in
# dist/, then the image. CONTAINER=docker works as well.
CONTAINER ?= podman
container: wheel
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) export --locked --no-hashes --no-emit-project \
	  --extra postgres --extra jobqueue --quiet -o dist/constraints.txt
	$(CONTAINER) build -f Containerfile -t localhost/xnatd .

clean:
	rm -rf $(VENV) $(TOOLS) build dist *.egg-info
