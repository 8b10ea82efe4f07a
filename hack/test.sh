#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine (as root: the tests create
# namespaces, cgroups and overlay mounts, and clean them up).
set -euo pipefail
cd "$(dirname "$0")/.."
./hack/deps.sh
./hack/build.sh
go vet ./...
(cd cmd/skiff-compose && go vet ./...) # a module of its own, not in ./...
./hack/fuzz.sh # every fuzz target, a few seconds each
./hack/cri-tools.sh >/dev/null
go test -count=1 -timeout 14m ./... "$@"
