#!/usr/bin/env bash
# Builds skiff, skiffd, skiff-shim and skiff-init into ./bin (side by side:
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
