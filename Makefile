# segloop: the two commands of the quick start.
#   make demo   create .venv, install, run `segloop demo` on the built-in MNI152 data
#   make test   create/update .venv, install, lint (ruff) and run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# torch is pinned to 2.13.0 in pyproject.toml (a CPU build lies on the machine).
EXTRAS ?= dev,learn,server
STAMP  := $(VENV)/.installed-$(EXTRAS)

.PHONY: demo test install lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/segloop demo

lint: install
	$(BIN)/ruff check src tests

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache segloop-demo
