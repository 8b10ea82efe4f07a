#!/usr/bin/env bash
# docker cp of a ~270 MB tree (16,000 files) into and out of a running
# container, against `tar c | tar x` of the same tree on the host. Goal: cp
# within 1.5x of the host's tar pipe. Own data root and socket; cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-16000}
. bench/lib.sh
bench_daemon 250

# The tree: 16,000 files of 17 KB in 160 directories (~272 MB).
src=$root/tree
for d in $(seq 160); do
  mkdir -p "$src/d$d"
  head -c $((17 * 1024 * FILES / 160)) /dev/urandom | split -b 17408 -a 3 - "$src/d$d/f"
done
du -sh "$src"
sync

secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
"$bin/skiff" run -d --name cpbench busybox sleep 3600 >/dev/null
mkdir -p "$root/hostcopy"
host=$(secs sh -c "tar c -C '$root' tree | tar x -C '$root/hostcopy'")
in=$(secs "$bin/skiff" cp "$src" cpbench:/tree)
mkdir -p "$root/out"
out=$(secs "$bin/skiff" cp cpbench:/tree "$root/out/")
printf 'host tar|tar: %.2fs   cp in: %.2fs (%.2fx)   cp out: %.2fs (%.2fx)\n' \
  "$host" "$in" "$(echo "$in / $host" | bc -l)" "$out" "$(echo "$out / $host" | bc -l)"
