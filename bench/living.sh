#!/usr/bin/env bash
# Living-with-containers benchmark of skiff (and Docker side by side when a
# Docker engine answers on /var/run/docker.sock):
#   1. `exec CONTAINER true` into a running container: median of N (after 3 warm-ups)
#   2. `stats --no-stream` with C running containers: median of 5
# Goals (issue 5): exec median <= 15 ms; stats --no-stream with 50 <= 300 ms.
# It uses its own data root, socket and cgroup parent and removes what it made.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
C=${C:-50}
./hack/build.sh
root=$(mktemp -d /tmp/skiff-bench-XXXX)
sock=$root/skiff.sock
export SKIFF_HOST=unix://$sock
bin=$PWD/bin
tar=$root/busybox.tar
./hack/mkbusybox.sh "$tar"

cg=/skiff-bench-$$
echo "{\"cgroup-parent\": \"$cg\", \"bridge\": \"skb$$\", \"bip\": \"10.251.0.1/16\", \"nft-table\": \"skiff_bench_$$\"}" > "$root/daemon.json"
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

median_ms() { # runs=K command... ; prints the median wall time in ms
  local runs=$1; shift
  local times=()
  for _ in 1 2 3; do "$@" >/dev/null; done
  for _ in $(seq "$runs"); do
    local s e
    s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
    times+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'
}

"$bin/skiff" run -d --name bench-exec --net none busybox sleep 600 >/dev/null
skiff_exec=$(median_ms "$N" "$bin/skiff" exec bench-exec true)
for i in $(seq "$C"); do "$bin/skiff" run -d --net none busybox sleep 600 >/dev/null; done
skiff_stats=$(median_ms 5 "$bin/skiff" stats --no-stream)
ids=$("$bin/skiff" ps -q); "$bin/skiff" rm -f $ids >/dev/null

docker_exec="-"; docker_stats="-"
if DOCKER_HOST=unix:///var/run/docker.sock docker info >/dev/null 2>&1; then
  export DOCKER_HOST=unix:///var/run/docker.sock
  docker image inspect busybox >/dev/null 2>&1 || docker import "$tar" busybox >/dev/null
  docker run -d --name bench-exec --net none busybox sleep 600 >/dev/null
  docker_exec=$(median_ms "$N" docker exec bench-exec true)
  for i in $(seq "$C"); do docker run -d --net none busybox sleep 600 >/dev/null; done
  docker_stats=$(median_ms 5 docker stats --no-stream)
  docker rm -f $(docker ps -q) >/dev/null
fi

printf '%-46s %12s %12s\n' "measure" "skiff" "docker"
printf '%-46s %12s %12s\n' "exec CONTAINER true (ms, median)" "$skiff_exec" "$docker_exec"
printf '%-46s %12s %12s\n' "stats --no-stream, $C running (ms, median)" "$skiff_stats" "$docker_stats"
