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
# the CNI plugins (bridge, host-local, loopback, portmap) of the CRI pod network tests
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
# Intel's igzip inflates pulled gzip layers 3-4x faster than Go (optional at run
# time: without it skiff inflates in-process)
command -v igzip >/dev/null || need+=(isal)
# a real terminal for the -it tests (send-keys / capture-pane)
command -v tmux >/dev/null || need+=(tmux)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
go mod download
