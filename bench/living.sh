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
. bench/lib.sh
bench_daemon 251


"$bin/skiff" run -d --name bench-exec --net none busybox sleep 600 >/dev/null
skiff_exec=$(median_ms "$N" "$bin/skiff" exec bench-exec true)
for i in $(seq "$C"); do "$bin/skiff" run -d --net none busybox sleep 600 >/dev/null; done
skiff_stats=$(median_ms 5 "$bin/skiff" stats --no-stream)
ids=$("$bin/skiff" ps -q); "$bin/skiff" rm -f $ids >/dev/null

docker_exec="-"; docker_stats="-"
if docker_side; then
  docker run -d --name bench-exec --net none busybox sleep 600 >/dev/null
  docker_exec=$(median_ms "$N" docker exec bench-exec true)
  for i in $(seq "$C"); do docker run -d --net none busybox sleep 600 >/dev/null; done
  docker_stats=$(median_ms 5 docker stats --no-stream)
  docker rm -f $(docker ps -q) >/dev/null
fi

printf '%-46s %12s %12s\n' "measure" "skiff" "docker"
printf '%-46s %12s %12s\n' "exec CONTAINER true (ms, median)" "$skiff_exec" "$docker_exec"
printf '%-46s %12s %12s\n' "stats --no-stream, $C running (ms, median)" "$skiff_stats" "$docker_stats"
