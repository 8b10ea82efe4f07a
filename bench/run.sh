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
. bench/lib.sh
bench_daemon 252

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }

skiff_run=$(median_ms "$N" "$bin/skiff" run --rm --net none busybox true)
sleep 1
skiff_rss=$(rss_kib "$dpid")

for i in $(seq "$C"); do "$bin/skiff" run -d --net none busybox sleep 600 >/dev/null; done
total=0; n=0
# A monitor works in its bundle directory; the one the engine keeps started
# ahead (`--bundle-stdin`, no container yet) is still in / and not counted.
for p in $(pgrep -f "skiff-shim monitor"); do
  case $(readlink "/proc/$p/cwd") in "$exec_root"/*) total=$((total + $(pss_kib "$p"))); n=$((n + 1)) ;; esac
done
skiff_mon=$(awk -v t="$total" -v n="$n" 'BEGIN {printf "%.2f", t/n/1024}')
ids=$("$bin/skiff" ps -q); "$bin/skiff" rm -f $ids >/dev/null

docker_run="-"; docker_rss="-"; docker_mon="-"
if docker_side; then
  docker_run=$(median_ms "$N" docker run --rm --net none busybox true)
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
