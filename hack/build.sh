#!/usr/bin/env bash
# Builds skiff and skiff-shim into ./bin (side by side: the daemon finds the
# shim next to itself).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
go build -trimpath -o bin/skiff ./cmd/skiff
# skiff-shim runs two or three times per container start: linked statically
# (its cgo is only the nsenter constructor), it skips the dynamic loader,
# about a millisecond each time on this VM.
CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo \
  -ldflags '-s -w -linkmode external -extldflags -static' -o bin/skiff-shim ./cmd/skiff-shim
# The --init of containers: static (no cgo), bound into the container.
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o bin/skiff-init ./cmd/skiff-init
