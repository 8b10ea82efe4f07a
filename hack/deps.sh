#!/usr/bin/env bash
# Installs what skiff needs to build and test on a fresh Debian machine.
set -euo pipefail
need=()
command -v go >/dev/null || { echo "Go is required (expected at /usr/local/go/bin)"; exit 1; }
[ -x /bin/busybox ] || need+=(busybox-static)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
# skiff-shim links statically against libc.a
command -v gcc >/dev/null && [ ! -f "$(gcc -print-file-name=libc.a)" ] && need+=(libc6-dev)
command -v ip >/dev/null || need+=(iproute2)
# nft lists tables in the networking tests' leak check (skiff itself needs no nft binary)
command -v nft >/dev/null || need+=(nftables)
# the reference registry, for the pull/push end-to-end tests
command -v docker-registry >/dev/null || need+=(docker-registry)
# Intel's igzip inflates pulled gzip layers 3-4x faster than Go (optional at run
# time: without it skiff inflates in-process)
command -v igzip >/dev/null || need+=(isal)
# a real terminal for the -it tests (send-keys / capture-pane)
command -v tmux >/dev/null || need+=(tmux)
# Debian's docker-compose 1.29 (docker-py), one of the two compose clients
# the networking tests drive (create, network connect, start)
command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
go mod download
# docker compose v2, the other compose client of the networking tests: the Go
# module github.com/docker/compose/v5 built as a docker CLI plugin, inside the
# module's own directory (its go.mod has exclude directives)
compose_plugin=$HOME/.docker/cli-plugins/docker-compose
if [ ! -x "$compose_plugin" ]; then
  dir=$(go mod download -json github.com/docker/compose/v5@v5.6.0 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$(dirname "$compose_plugin")"
  (cd "$dir" && go build -trimpath -o "$compose_plugin" ./cmd)
fi
