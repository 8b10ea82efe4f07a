#!/usr/bin/env bash
# Builds skiff and skiff-shim into ./bin (side by side: the daemon finds the
# shim next to itself).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
go build -trimpath -o bin/skiff ./cmd/skiff
CGO_ENABLED=1 go build -trimpath -ldflags '-s -w' -o bin/skiff-shim ./cmd/skiff-shim
# The --init of containers: static (no cgo), bound into the container.
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o bin/skiff-init ./cmd/skiff-init
