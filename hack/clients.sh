#!/usr/bin/env bash
# Builds the third-party clients the end-to-end tests drive skiff with, once,
# into a cache keyed by version (~/.cache/skiff-test), and installs them:
#   docker compose v5 (github.com/docker/compose/v5), as a docker CLI plugin in
#   ~/.docker/cli-plugins/docker-compose.
# Debian's docker-compose 1.29 comes from hack/deps.sh (apt).
# None of these is part of skiff; they are the users' clients skiff is tested with.
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin
cache=${SKIFF_TEST_CACHE:-$HOME/.cache/skiff-test}

compose_version=v5.6.0
compose_bin=$cache/compose-$compose_version/docker-compose
if [ ! -x "$compose_bin" ]; then
  # Its go.mod has exclude directives, so `go install mod@version` refuses it:
  # build inside the module's own directory, as its Makefile does.
  dir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/docker/compose/v5@$compose_version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "clients.sh: could not download docker compose $compose_version" >&2; exit 1; }
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.compose.XXXXXX")
  (cd "$dir" && go build -trimpath \
    -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$compose_version" \
    -o "$tmp/docker-compose" ./cmd)
  mkdir -p "$(dirname "$compose_bin")"
  # rename into place: a killed build never leaves a half-written cache entry
  mv "$tmp/docker-compose" "$compose_bin"
  rm -rf "$tmp"
fi
mkdir -p "$HOME/.docker/cli-plugins"
ln -sf "$compose_bin" "$HOME/.docker/cli-plugins/docker-compose"
