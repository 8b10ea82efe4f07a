#!/usr/bin/env bash
# Builds crictl and critest from sigs.k8s.io/cri-tools (the version below)
# into ~/.cache/skiff-test/cri-tools-VERSION/, once: the CRI end-to-end tests
# drive skiff with crictl, and critest (the CRI validation suite) runs against
# skiff's CRI socket by hand (it is not part of go test). Built from the
# module's own directory, with its own go.mod and vendor tree, so its
# dependencies never enter skiff's.
set -euo pipefail
ver=v1.37.0
out="${SKIFF_TEST_CACHE:-$HOME/.cache/skiff-test}/cri-tools-$ver"
if [ -x "$out/crictl" ] && [ -x "$out/critest" ]; then
  echo "$out"
  exit 0
fi
dir=$(cd / && GOFLAGS= go mod download -json "sigs.k8s.io/cri-tools@$ver" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "cri-tools $ver: go mod download gave no directory" >&2; exit 1; }
mkdir -p "$out"
cd "$dir"
GOFLAGS= go build -trimpath -o "$out/crictl.tmp" ./cmd/crictl
GOFLAGS= go test -c -trimpath -o "$out/critest.tmp" ./cmd/critest
mv "$out/crictl.tmp" "$out/crictl"
mv "$out/critest.tmp" "$out/critest"
echo "$out"
