#!/usr/bin/env bash
# Build, from Debian packages, the base images the compose stack uses, for hosts that cannot pull
# from a registry (Docker Hub unreachable). With registry access you need none of this: the
# defaults in deploy/compose.env name python:3.11-slim, redis:7 and prom/prometheus.
#
#   tandem-local/debian:bookworm      debootstrap minbase, imported with `docker import`
#   tandem-local/python:bookworm      + python3.11, venv, curl   (Dockerfile's BASE_IMAGE)
#   tandem-local/redis:bookworm       + redis-server
#   tandem-local/prometheus:bookworm  + prometheus 2.42, entrypoint /usr/bin/prometheus (like prom/prometheus)
#
# Needs root (debootstrap), debootstrap and a running dockerd. Images that exist are kept
# (FORCE=1 rebuilds them). The mirror is DEBIAN_MIRROR (default deb.debian.org).
set -euo pipefail
cd "$(dirname "$0")"

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PREFIX="${TANDEM_IMAGE_PREFIX:-tandem-local}"

have() { [[ -z "${FORCE:-}" ]] && docker image inspect "$1" >/dev/null 2>&1; }

if ! have "$PREFIX/debian:bookworm"; then
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' EXIT
  echo "debootstrap bookworm (minbase) from $MIRROR"
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import --change 'CMD ["/bin/bash"]' - "$PREFIX/debian:bookworm" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
fi

for name in python redis prometheus; do
  if ! have "$PREFIX/$name:bookworm"; then
    echo "building $PREFIX/$name:bookworm"
    docker build -q --build-arg "DEBIAN_IMAGE=$PREFIX/debian:bookworm" -t "$PREFIX/$name:bookworm" \
      -f "$name.Dockerfile" . >/dev/null
  fi
done
docker image ls "$PREFIX/*"
