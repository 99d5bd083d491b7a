#!/usr/bin/env bash
# `make test`: install and start what the tests need, run them, stop it all.
#   - system packages, when missing and apt is at hand (as root): redis-server, the zstd CLI (its
#     round-trip test), chromium (the playground's browser tests), prometheus (the judge series
#     scraped for real in tests/routing/test_routing_judge.py);
#   - a private redis-server on a free port, unless TANDEM_TEST_REDIS_URL names one; stopped on exit.
# Extra arguments go to pytest. The compose stack has its own target (`make compose-test`), and so
# do the nightly end-to-end runs (`make loop-test`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v zstd >/dev/null || missing+=(zstd)
command -v chromium >/dev/null || missing+=(chromium)
command -v prometheus >/dev/null || missing+=(prometheus)
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing ${missing[*]}: install them (e.g. sudo apt-get install -y ${missing[*]}); their tests will fail" >&2
  fi
fi

if [[ -z "${TANDEM_TEST_REDIS_URL:-}" ]]; then
  port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  command -v redis-server >/dev/null || { echo "redis-server is required (apt-get install -y redis-server)" >&2; exit 1; }
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no --logfile ''
  trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true' EXIT
  export TANDEM_TEST_REDIS_URL="redis://127.0.0.1:${port}/0"
fi

"$PYTHON" -m pytest -q -m "not compose and not nightly" "$@"
