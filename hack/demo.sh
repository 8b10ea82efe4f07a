#!/usr/bin/env bash
# skiff's main job on a fresh machine: install, build, import busybox, run it.
set -euo pipefail
cd "$(dirname "$0")/.."
./hack/deps.sh
./hack/build.sh
tar=$(mktemp --suffix=.tar)
trap 'rm -f "$tar"' EXIT
./hack/mkbusybox.sh "$tar"
# The CLI starts the daemon in the background when none answers.
./bin/skiff image inspect busybox >/dev/null 2>&1 || ./bin/skiff import "$tar" busybox
./bin/skiff run --rm busybox echo hello
