#!/usr/bin/env bash
# Side-by-side benchmark of skiff (and Docker, when a Docker engine answers on
# /var/run/docker.sock) on this machine:
#   1. `run --rm --net none busybox true` latency, median of 20 (after 3 warm-ups)
#   2. the engine's idle RSS (skiff daemon; dockerd + containerd)
#   3. per-container monitor memory (PSS of skiff-shim monitor; containerd-shim RSS)
#      with 50 `sleep 600` containers running
# It uses its own data root and socket and removes everything it made.
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
echo "{\"cgroup-parent\": \"$cg\", \"bridge\": \"skb$$\", \"bip\": \"10.252.0.1/16\", \"nft-table\": \"skiff_bench_$$\"}" > "$root/daemon.json"
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

median_ms() { # command... ; prints the median wall time of N runs in ms
  local times=()
  for _ in 1 2 3; do "$@" >/dev/null; done
  for _ in $(seq "$N"); do
    local s e
    s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
    times+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }

skiff_run=$(median_ms "$bin/skiff" run --rm --net none busybox true)
sleep 1
skiff_rss=$(rss_kib "$dpid")

for i in $(seq "$C"); do "$bin/skiff" run -d --net none busybox sleep 600 >/dev/null; done
total=0; n=0
for p in $(pgrep -f "skiff-shim monitor --bundle $root"); do total=$((total + $(pss_kib "$p"))); n=$((n + 1)); done
skiff_mon=$(awk -v t="$total" -v n="$n" 'BEGIN {printf "%.2f", t/n/1024}')
ids=$("$bin/skiff" ps -q); "$bin/skiff" rm -f $ids >/dev/null

docker_run="-"; docker_rss="-"; docker_mon="-"
if DOCKER_HOST=unix:///var/run/docker.sock docker info >/dev/null 2>&1; then
  export DOCKER_HOST=unix:///var/run/docker.sock
  docker image inspect busybox >/dev/null 2>&1 || docker import "$tar" busybox >/dev/null
  docker_run=$(median_ms docker run --rm --net none busybox true)
  d=$(pgrep -x dockerd | head -1); c=$(pgrep -x containerd | head -1)
  docker_rss=$(( $(rss_kib "$d") + ${c:+$(rss_kib "$c")} ))
  for i in $(seq "$C"); do docker run -d --net none busybox sleep 600 >/dev/null; done
  total=0; n=0
  for p in $(pgrep -f containerd-shim); do total=$((total + $(rss_kib "$p"))); n=$((n + 1)); done
  docker_mon=$(awk -v t="$total" -v n="$n" 'BEGIN {printf "%.2f", t/n/1024}')
  docker rm -f $(docker ps -q) >/dev/null
  docker_rss=$(awk -v k="$docker_rss" 'BEGIN {printf "%.1f", k/1024}')
fi

printf '%-44s %12s %12s\n' "measure" "skiff" "docker"
printf '%-44s %12s %12s\n' "run --rm --net none busybox true (ms, median)" "$skiff_run" "$docker_run"
printf '%-44s %12s %12s\n' "engine idle RSS (MiB)" "$(awk -v k="$skiff_rss" 'BEGIN {printf "%.1f", k/1024}')" "$docker_rss"
printf '%-44s %12s %12s\n' "monitor per container, $C running (MiB)" "$skiff_mon PSS" "$docker_mon RSS"
