# Everything runs through uv with the committed lock. On a machine without uv, it is
# installed from PyPI into .tools/ (only the system python3 and make are needed).
SHELL := /bin/bash
UV_FOUND := $(shell command -v uv 2>/dev/null)
UV := $(if $(UV_FOUND),$(UV_FOUND),$(CURDIR)/.tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3
PYTEST_ARGS ?=

.PHONY: setup e2e-deps run test lint format bench perf docs audit clean

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv

setup: $(UV)
	$(UV) sync --locked --quiet

run: setup
	$(UV) run microneedling demo --if-empty
	$(UV) run microneedling serve

# Browser-test helpers (axe-core) from the npm registry, when npm is there; the browser tests
# skip without them outside CI, and fail without them under CI=true. Installed once per lock
# file, so runs side by side (CI's two engines) never reinstall under each other.
E2E_STAMP := tests/e2e/node_modules/.package-lock.json

e2e-deps:
	@if [ -f $(E2E_STAMP) ] && [ $(E2E_STAMP) -nt tests/e2e/package-lock.json ]; then :; \
	elif command -v npm >/dev/null; then npm ci --prefix tests/e2e --no-audit --no-fund --silent; \
	else echo "npm not found: browser tests will be skipped (CI fails instead)"; fi

test: setup e2e-deps
	$(UV) run pytest $(PYTEST_ARGS)

lint: setup
	$(UV) run ruff check src tests
	$(UV) run ruff format --check src tests
	$(UV) run mypy
	$(UV) run lint-imports
	$(UV) run django-admin makemigrations --check --dry-run --settings microneedling.config.settings

format: setup
	$(UV) run ruff check --fix src tests
	$(UV) run ruff format src tests

# Known vulnerabilities in the locked dependencies (pip-audit, PyPI's advisory data).
# --strict fails when a package could not be checked, so an unreachable service is an error,
# never a silent pass.
audit: setup
	$(UV) export --format requirements-txt --no-emit-project --quiet > .venv/requirements-audit.txt
	$(UV) run pip-audit --strict --disable-pip --no-deps --progress-spinner off -r .venv/requirements-audit.txt

bench: setup
	$(UV) run microneedling bench

# Every benchmark once, written to docs/performance.md with plots (commit the result).
perf: setup
	$(UV) run microneedling bench --runs 5 --write-docs docs

docs: setup
	$(UV) run microneedling pack docs > docs/knowledge.md

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
