#!/usr/bin/env bash
# Builds skiff, skiffd, skiff-shim, skiff-init and skiff-compose into ./bin (side by side:
# `skiff daemon` runs the skiffd next to it, which finds the shim next to
# itself).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
# The CLI starts for every command: without cgo it is static and skips the
# dynamic loader; it links none of the engine (that is skiffd).
CGO_ENABLED=0 go build -trimpath -o bin/skiff ./cmd/skiff
go build -trimpath -o bin/skiffd ./cmd/skiffd
# skiff-shim runs two or three times per container start: linked statically
# (its cgo is only the nsenter constructor), it skips the dynamic loader,
# about a millisecond each time on this VM.
CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo \
  -ldflags '-s -w -linkmode external -extldflags -static' -o bin/skiff-shim ./cmd/skiff-shim
# The --init of containers: static (no cgo), bound into the container.
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o bin/skiff-init ./cmd/skiff-init
# docker compose, linked from github.com/docker/compose/v5 in a Go module of
# its own (cmd/skiff-compose/go.mod: compose's pinned graph stays out of the
# CLI and the engine); `skiff compose` execs it. A cold build takes minutes,
# a warm one seconds. SKIFF_NO_COMPOSE=1 skips it.
if [ -z "${SKIFF_NO_COMPOSE:-}" ]; then
  (cd cmd/skiff-compose &&
    compose_version=$(go list -m -f '{{.Version}}' github.com/docker/compose/v5) &&
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$compose_version" \
      -o ../../bin/skiff-compose .)
fi
