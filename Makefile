# Two commands for a fresh machine: `make up` and `make test`. Everything else here serves them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := deploy/requirements.lock
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)
TYPECHECK_ROOT := $(VENV)/typecheck

.PHONY: up test unit fmt help install system-deps cluster-binaries prometheus engine lint typecheck pytest clean

up: install engine  ## install, then serve deploy/examples/local-smollm2.yaml on this machine (Ctrl-C stops)
	$(BIN)/modelplex up

test: install system-deps cluster-binaries prometheus engine lint pytest  ## install everything, lint, run the whole test suite

unit: install lint  ## the fast loop: ruff, mypy and the unit tests (no engine, no cluster)
	$(BIN)/pytest -q tests/unit

fmt: install  ## rewrite the tree in the house style: ruff's fixes, then ruff format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

help:  ## list the targets
	@awk -F':.*## ' '/^[a-z][a-z-]*:.*## / {printf "  %-17s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP)  ## a virtualenv in .venv with modelplex (editable) and its dev tools, from the hashed lock

# Every package comes from $(LOCK) (made by deploy/lock.sh), checked against its sha256; modelplex
# itself is built with the setuptools and wheel of the lock (no build isolation: nothing unhashed is
# fetched), and `pip check` proves the locked set complete.
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed (found " + sys.version.split()[0] + "); set PYTHON=...")'
	@echo "[install] creating $(VENV) and installing modelplex with its dev tools from $(LOCK)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar on --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --disable-pip-version-check --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check --disable-pip-version-check
	rm -f $(VENV)/.installed-* && touch $@

system-deps:  ## Debian packages the tests start for real (redis-server, chromium, ...)
	@deploy/install-system-deps.sh

engine: install  ## vLLM in its own virtualenv under ~/.cache/modelplex, and the default model (reused when present)
	@PYTHON=$(PYTHON) deploy/engine/install.sh >/dev/null
	@$(BIN)/modelplex models prepare smollm2 >/dev/null

cluster-binaries:  ## build etcd, Kubernetes, kwok, LWS and helm into ~/.cache/modelplex (reused when present)
	@deploy/dev-cluster/build.sh >/dev/null

prometheus:  ## build prometheus and promtool into ~/.cache/modelplex (reused when present; cold: ~4 min)
	@deploy/prometheus/build.sh >/dev/null

lint: install typecheck  ## ruff check, ruff format --check and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow setuptools' editable import hook, so it reads the package through a link
# (pyproject's mypy_path). Tests and benchmarks are read as the modules pytest and python see.
TYPECHECK_PACKAGE := -m modelplex -m modelplex.cli -m modelplex.processes -m modelplex.logs -m modelplex.prometheus_api $(addprefix -p modelplex.,crds kube manifests operator engine local devcluster gateway billing)
TYPECHECK_TESTS := -m conftest $(addprefix -p ,mpxtest unit integration e2e)
TYPECHECK_BENCH := $(patsubst bench/%.py,-m %,$(wildcard bench/*.py))

typecheck: install  ## mypy (strict) over the package, tests/ and bench/
	@mkdir -p $(TYPECHECK_ROOT) && ln -sfn "$(CURDIR)" $(TYPECHECK_ROOT)/modelplex
	$(BIN)/mypy $(TYPECHECK_PACKAGE) $(TYPECHECK_TESTS) $(TYPECHECK_BENCH)

pytest: install  ## the whole test suite (unit, integration, e2e); needs the heavy targets' parts
	@rc=0; $(BIN)/pytest || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here" >&2; exit 1; fi; \
	exit $$rc

clean:  ## remove the virtualenv, build output and tool caches
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
