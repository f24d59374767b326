# The two commands of the README: `make demo` (run it) and `make test` (prove it).
# Both install what they need first (scripts/setup.sh is idempotent).

PYTHON := .venv/bin/python
PYTEST := .venv/bin/pytest

.PHONY: setup demo demo-down test test-unit test-api test-e2e lint bench

setup:
	scripts/setup.sh

demo: setup
	.venv/bin/vnet-demo up

demo-down:
	.venv/bin/vnet-demo down

test: setup
	.venv/bin/ruff check .
	.venv/bin/lint-imports --no-cache
	# Two workers, each test file on one of them (its module fixtures stay whole): the
	# end-to-end tests mostly wait on real packets and timers, so two halve the wall time.
	$(PYTEST) -q -ra -n 2 --dist loadfile tests

test-unit: setup
	$(PYTEST) -q tests/unit

test-api: setup
	$(PYTEST) -q tests/api

test-e2e: setup
	$(PYTEST) -q -ra tests/e2e

lint:
	.venv/bin/ruff check .
	.venv/bin/lint-imports --no-cache

bench: setup
	bench/run
