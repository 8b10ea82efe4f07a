#!/usr/bin/env bash
# Networking benchmarks of skiff (issue 4), side by side with Docker when a
# Docker engine answers on /var/run/docker.sock:
#   1. `run --rm busybox true` on the default bridge, median of N
#   2. the same with -p 80 (a published port: one DNAT rule in and out)
#   3. C `run -d busybox sleep 600` started in parallel: wall time until all run
# The daemon gets its own bridge, subnet and nftables table and removes them.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
C=${C:-50}
./hack/build.sh
root=$(mktemp -d /tmp/skiff-nbench-XXXX)
sock=$root/skiff.sock
export SKIFF_HOST=unix://$sock
bin=$PWD/bin
tar=$root/busybox.tar
./hack/mkbusybox.sh "$tar"

cg=/skiff-nbench-$$
cat > "$root/daemon.json" <<J
{"cgroup-parent": "$cg", "bridge": "sknb$$", "bip": "10.253.0.1/16", "nft-table": "skiff_nbench_$$"}
J
"$bin/skiff" daemon -H "$SKIFF_HOST" --data-root "$root/data" --exec-root "$root/exec" --config-file "$root/daemon.json" >"$root/daemon.log" 2>&1 &
dpid=$!
cleanup() {
  ids=$("$bin/skiff" ps -aq 2>/dev/null || true)
  [ -n "$ids" ] && "$bin/skiff" rm -f $ids >/dev/null 2>&1 || true
  kill "$dpid" 2>/dev/null || true
  wait "$dpid" 2>/dev/null || true
  for c in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/"$cg"; do [ -d "$c" ] && rmdir "$c" 2>/dev/null; done
  rm -rf "$root"
}
trap cleanup EXIT
for _ in $(seq 100); do "$bin/skiff" version >/dev/null 2>&1 && break; sleep 0.05; done
"$bin/skiff" import "$tar" busybox >/dev/null

median_ms() {
  local times=()
  for _ in 1 2 3; do "$@" >/dev/null; done
  for _ in $(seq "$N"); do
    local s e
    s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
    times+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'
}
parallel_s() { # engine-cli: starts C containers at once, prints seconds until all run
  local s e
  s=$(date +%s%N)
  for _ in $(seq "$C"); do "$@" run -d busybox sleep 600 >/dev/null & done
  wait
  e=$(date +%s%N)
  awk -v n=$(( (e - s) / 1000000 )) 'BEGIN {printf "%.2f", n/1000}'
  "$@" rm -f $("$@" ps -q) >/dev/null
}

skiff_run=$(median_ms "$bin/skiff" run --rm busybox true)
skiff_runp=$(median_ms "$bin/skiff" run --rm -p 80 busybox true)
skiff_par=$(parallel_s "$bin/skiff")

docker_run="-"; docker_runp="-"; docker_par="-"
if DOCKER_HOST=unix:///var/run/docker.sock docker info >/dev/null 2>&1; then
  export DOCKER_HOST=unix:///var/run/docker.sock
  docker image inspect busybox >/dev/null 2>&1 || docker import "$tar" busybox >/dev/null
  docker_run=$(median_ms docker run --rm busybox true)
  docker_runp=$(median_ms docker run --rm -p 80 busybox true)
  docker_par=$(parallel_s docker)
fi

printf '%-46s %12s %12s\n' "measure" "skiff" "docker"
printf '%-46s %12s %12s\n' "run --rm busybox true, bridge (ms, median)" "$skiff_run" "$docker_run"
printf '%-46s %12s %12s\n' "run --rm -p 80 busybox true (ms, median)" "$skiff_runp" "$docker_runp"
printf '%-46s %12s %12s\n' "$C run -d in parallel, all running (s)" "$skiff_par" "$docker_par"
