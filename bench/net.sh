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
. bench/lib.sh
bench_daemon 253

parallel_s() { # engine-cli: starts C containers at once, prints seconds until all run
  local s e
  s=$(date +%s%N)
  for _ in $(seq "$C"); do "$@" run -d busybox sleep 600 >/dev/null & done
  wait
  e=$(date +%s%N)
  awk -v n=$(( (e - s) / 1000000 )) 'BEGIN {printf "%.2f", n/1000}'
  "$@" rm -f $("$@" ps -q) >/dev/null
}

skiff_run=$(median_ms "$N" "$bin/skiff" run --rm busybox true)
skiff_runp=$(median_ms "$N" "$bin/skiff" run --rm -p 80 busybox true)
skiff_par=$(parallel_s "$bin/skiff")

docker_run="-"; docker_runp="-"; docker_par="-"
if docker_side; then
  docker_run=$(median_ms "$N" docker run --rm busybox true)
  docker_runp=$(median_ms "$N" docker run --rm -p 80 busybox true)
  docker_par=$(parallel_s docker)
fi

printf '%-46s %12s %12s\n' "measure" "skiff" "docker"
printf '%-46s %12s %12s\n' "run --rm busybox true, bridge (ms, median)" "$skiff_run" "$docker_run"
printf '%-46s %12s %12s\n' "run --rm -p 80 busybox true (ms, median)" "$skiff_runp" "$docker_runp"
printf '%-46s %12s %12s\n' "$C run -d in parallel, all running (s)" "$skiff_par" "$docker_par"
