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
$(CLIENTS): tests/clients/package.json tests/clients/package-lock.json
	npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error
	touch $(CLIENTS)

clients: $(CLIENTS)

test: lint tools $(CLIENTS)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/clients/node_modules
