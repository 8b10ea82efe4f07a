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
# mkfs.ext4 for the full-disk test's small loop-mounted data root (tests/diskfull_test.go)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
# the CNI plugins (bridge, host-local, loopback, portmap) of the CRI pod network tests
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
# Intel's igzip inflates pulled gzip layers 3-4x faster than Go (optional at run
# time: without it skiff inflates in-process)
command -v igzip >/dev/null || need+=(isal)
# a real terminal for the -it tests (send-keys / capture-pane)
command -v tmux >/dev/null || need+=(tmux)
# Compose v1 (Python, docker-py): one of the two compose generations the tests
# drive skiff with (hack/clients.sh builds the other, docker compose v5)
command -v docker-compose >/dev/null || need+=(docker-compose)
# builds the Debian image with systemd that tests/systemd_test.go boots
# (cached under ~/.cache/skiff-test)
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # no recommends: docker-compose recommends docker.io, a dockerd that must
  # never run beside skiff's tests
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
go mod download
"$(dirname "$0")/clients.sh"
# The real docker CLI drives skiff in the end-to-end tests; they fail without
# it. Built from its Go module (hack/docker-cli.sh, a few minutes) and cached.
DOCKER_CLI_VERSION=28.2.2
if ! command -v docker >/dev/null; then
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/skiff-test/docker-cli-$DOCKER_CLI_VERSION"
  [ -x "$cache/docker" ] || "$(dirname "$0")/docker-cli.sh" "$cache" "$DOCKER_CLI_VERSION"
  install -m 0755 "$cache/docker" /usr/local/bin/docker
fi
