# Emporion developer tasks. `make test` and `make demo` set up everything themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: help demo venv test lint format typecheck imports codegen codegen-check pytest bench clean system-deps pymesos

help:
	@echo "make demo     - create .venv, install, run an example job on a local cluster"
	@echo "make test     - create .venv, install dev deps and system packages, lint, type-check, test"
	@echo "make lint     - ruff check + ruff format --check + import contracts"
	@echo "make format   - ruff format + ruff check --fix"
	@echo "make codegen  - regenerate protobuf/gRPC code from protos/v1/*.proto"
	@echo "make bench    - run the benchmarks (prints JSON)"

# A fresh machine may lack a recent Python or the venv module: say which, and how to get it.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "make: Emporion needs Python 3.11 or newer as '$(PYTHON)' (found: $$($(PYTHON) --version 2>&1));" \
	       "run e.g. 'make PYTHON=python3.12 $(MAKECMDGOALS)'" >&2; exit 2; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "make: '$(PYTHON) -m venv' failed; on Debian or Ubuntu: apt-get install python3-venv" >&2; \
	  exit 2; }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# System packages the tests need (root on Debian; skipped with a note elsewhere).
system-deps:
	@bash .ci/system-deps.sh

# pymesos 0.3.15 for the scheduler HTTP API's tests (its http-parser needs a pure build on 3.11).
pymesos: venv
	bash .ci/install-pymesos.sh $(BIN)/python

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

imports: venv
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: venv
	$(BIN)/mypy

codegen: venv
	$(BIN)/python -m protos.codegen

codegen-check: venv
	$(BIN)/python -m protos.codegen --check

pytest: venv
	$(BIN)/pytest $(PYTEST_ARGS)

test: venv system-deps pymesos lint typecheck codegen-check pytest

DEMO_AGENTS ?= 2
DEMO_TASKS ?= 20
demo: venv
	$(BIN)/emporion local --agents $(DEMO_AGENTS) \
	  --run "python -m examples.hello_framework --tasks $(DEMO_TASKS)"
	@echo
	@echo "That was a master and $(DEMO_AGENTS) agents on this machine running $(DEMO_TASKS) tasks. Next:"
	@echo "  . $(VENV)/bin/activate                  # puts emporion and the virtualenv's python on PATH"
	@echo "  emporion local --agents 2             # a cluster until Ctrl-C; it prints the master's and"
	@echo "                                        # the web UI's addresses and where the logs are"
	@echo "  export EMPORION_MASTER=HOST:PORT      # (in another shell) the master address it printed"
	@echo "  emporion run -- sh -c 'echo hi'       # run a command as a task; see docs/cli.md"
	@echo "  python -m examples.hello_framework    # a framework written with framework_sdk (README.md)"

bench: venv
	$(BIN)/python -m bench.allocator

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
