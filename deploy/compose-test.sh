#!/usr/bin/env bash
# `make compose-test`: prepare this host for the compose stack, then run tests/deploy/test_compose_stack.py.
#   - install docker.io and a compose (the v2 plugin when apt has it, else Debian's docker-compose
#     1.29) and debootstrap when missing; start dockerd when none answers, and stop it afterwards;
#   - build the base images from Debian packages (deploy/images/build-base.sh) unless BASE_IMAGE,
#     REDIS_IMAGE and PROMETHEUS_IMAGE name images you have (python:3.11-slim, redis:7, ...);
#   - the test fills the wheelhouse (deploy/images/wheels.sh) from this checkout's pyproject.toml,
#     so the image installs offline, then builds the image.
# The test builds the Tandem image, brings the stack up, runs the faults and the panel check, and
# tears everything down. Wall time is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
PYTHON="${PYTHON:-.venv/bin/python}"

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
  if apt-cache show docker-compose-plugin >/dev/null 2>&1; then missing+=(docker-compose-plugin)
  else missing+=(docker-compose); fi
fi
if [[ -z "${BASE_IMAGE:-}" ]]; then command -v debootstrap >/dev/null || missing+=(debootstrap); fi
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

dockerd_pid=""
if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd"
  dockerd >/tmp/tandem-dockerd.log 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start (see /tmp/tandem-dockerd.log)"; exit 1; }
fi
stop_dockerd() {
  if [[ -n "$dockerd_pid" ]]; then kill "$dockerd_pid" && wait "$dockerd_pid" || true; fi
}
trap stop_dockerd EXIT

if [[ -z "${BASE_IMAGE:-}" ]]; then deploy/images/build-base.sh; fi

# A private basetemp: other pytest runs on this host rotate the shared one.
basetemp="$(mktemp -d /tmp/tandem-compose-test.XXXXXX)"
status=0
"$PYTHON" -m pytest -m compose tests/deploy/test_compose_stack.py -q -s -p no:cacheprovider \
  --basetemp "$basetemp" || status=$?
rm -rf "$basetemp"
echo "compose-test wall time: $(( $(date +%s) - started ))s"
exit "$status"
