#!/usr/bin/env bash
# Builds the Docker image with podman (Debian's packages; no Docker engine needed), as
# `make image` and CI do. The Dockerfile starts FROM python:3.11-slim; where that cannot be
# pulled (no registry reachable), a stand-in is bootstrapped from Debian bookworm's packages
# with mmdebstrap (Python 3.11, as python:3.11-slim has) and tagged under that name, so the
# Dockerfile builds unchanged. The stand-in is kept between runs (about 2.5 minutes to make).
#
# Usage: ci/image.sh [TAG]       (default wijkbudget:latest)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TAG="${1:-wijkbudget:latest}"
BASE="docker.io/library/python:3.11-slim"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need podman || ! need mmdebstrap || ! need runc; then
    echo "== installing podman, buildah, mmdebstrap (Debian packages)"
    (apt-get install -y -qq podman buildah mmdebstrap uidmap fuse-overlayfs slirp4netns runc \
        || (apt-get update -qq && apt-get install -y -qq podman buildah mmdebstrap uidmap \
            fuse-overlayfs slirp4netns runc)) > /dev/null
fi

if ! podman image exists "$BASE"; then
    if ! podman pull -q "$BASE" > /dev/null 2>&1; then
        echo "== $BASE cannot be pulled: bootstrapping a stand-in from Debian bookworm"
        WORK="$(mktemp -d)"
        trap 'rm -rf "$WORK"' EXIT
        mmdebstrap --quiet --variant=apt \
            --include=python3,python3-venv,python3-pip,ca-certificates \
            bookworm "$WORK/rootfs.tar"
        podman import -q "$WORK/rootfs.tar" localhost/wijkbudget-debian-python:bookworm > /dev/null
        mkdir -p "$WORK/ctx/certs"
        # Package traffic on some networks passes a TLS proxy with its own CA: the build
        # (pip, uv) must trust what the host trusts.
        cp /usr/local/share/ca-certificates/*.crt "$WORK/ctx/certs/" 2>/dev/null || true
        cat > "$WORK/ctx/Containerfile" <<'CONTAINERFILE'
FROM localhost/wijkbudget-debian-python:bookworm
COPY certs/ /usr/local/share/ca-certificates/
RUN ln -sf /usr/bin/python3 /usr/local/bin/python && update-ca-certificates > /dev/null \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
# python:3.11-slim's pip installs system-wide; Debian's needs to be told it may.
ENV PIP_BREAK_SYSTEM_PACKAGES=1 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    LANG=C.UTF-8
CONTAINERFILE
        podman build -q --isolation=chroot --format docker -t "$BASE" "$WORK/ctx" > /dev/null
        podman rmi -f localhost/wijkbudget-debian-python:bookworm > /dev/null 2>&1 || true
    fi
fi

echo "== podman build $TAG"
# --format docker keeps HEALTHCHECK (the OCI format drops it); chroot isolation works where
# crun cannot manage cgroups.
podman build --quiet --pull=never --isolation=chroot --format docker -t "$TAG" "$ROOT"
podman image inspect "$TAG" --format 'image {{.Id}}: {{.Size}} bytes'
