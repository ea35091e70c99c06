#!/usr/bin/env bash
# Build a Python base image from Debian packages, for build hosts that cannot
# pull python:3.12-slim (offline, air-gapped, or no registry reachable).
#
#   sudo deploy/docker/build-base-image.sh [TAG]      # default minimq-base:bookworm
#   docker build --build-arg BASE_IMAGE=minimq-base:bookworm -t minimq .
#
# debootstrap installs a minimal Debian (python3, python3-venv, ca-certificates)
# from the Debian mirror apt already uses (or DEBIAN_MIRROR), and `docker import`
# turns that root filesystem into a one-layer image. Needs root, debootstrap
# and a running Docker engine. SUITE defaults to this host's Debian release.
set -euo pipefail

TAG="${1:-minimq-base:bookworm}"
SUITE="${SUITE:-$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")}"
SUITE="${SUITE:-bookworm}"

# The first Debian mirror in apt's sources (deb822 or one-line format).
apt_mirror() {
  local uri
  uri=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)\/\?$/\1/p' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
  if [ -z "$uri" ]; then
    uri=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\/debian\)\/\?[[:space:]].*/\2/p' \
          /etc/apt/sources.list 2>/dev/null | head -n 1)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${DEBIAN_MIRROR:-$(apt_mirror)}"

command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "debootstrap needs root" >&2; exit 1; }

ROOTFS=$(mktemp -d /tmp/minimq-base.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT

echo "debootstrap $SUITE from $MIRROR into $ROOTFS"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || { tail -n 30 "$ROOTFS.log" >&2; rm -f "$ROOTFS.log"; exit 1; }
rm -f "$ROOTFS.log"
# What an image needs no copy of: package lists, caches, docs, man pages.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/*

tar --numeric-owner -C "$ROOTFS" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.opencontainers.image.description=\"Debian $SUITE + python3, built by debootstrap from $MIRROR\"" \
  - "$TAG" >/dev/null
echo "imported $TAG ($(docker image inspect -f '{{.Size}}' "$TAG") bytes)"
