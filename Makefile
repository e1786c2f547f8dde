# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SRC    := $(wildcard gateway tests bench)
STAMP  := $(VENV)/.installed

CLIENTS := tests/clients/node_modules/.installed

.PHONY: demo test lint format bench clean tools clients

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/zdr-gateway demo

lint: $(STAMP)
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format $(SRC)
	$(BIN)/ruff check --fix $(SRC)

# System tools the suite runs for real (redis-server, promtool, strace, kubectl, node):
# installed when missing, see .ci/tools.
tools: $(STAMP)
	VENV_BIN=$(BIN) bash .ci/tools

# The real clients tests/clients runs (Claude Code, the TypeScript SDK): versions pinned
# in tests/clients/package.json and its lock file, installed with npm (Node 20).
# The anthropic Python SDK 1.x too, beside the venv's 2.x (tests/clients/requirements-sdk1.txt).
$(CLIENTS): tests/clients/package.json tests/clients/package-lock.json tests/clients/requirements-sdk1.txt | $(STAMP)
	npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error
	rm -rf tests/clients/py-sdk1
	$(BIN)/pip install --quiet --target tests/clients/py-sdk1 -r tests/clients/requirements-sdk1.txt
	touch $(CLIENTS)

clients: $(CLIENTS)

test: lint tools $(CLIENTS)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/clients/node_modules tests/clients/py-sdk1
