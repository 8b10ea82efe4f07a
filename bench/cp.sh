#!/usr/bin/env bash
# docker cp of a ~270 MB tree (16,000 files) into and out of a running
# container, against `tar c | tar x` of the same tree on the host. Goal: cp
# within 1.5x of the host's tar pipe. Own data root and socket; cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-16000}
./hack/build.sh
root=$(mktemp -d /tmp/skiff-bench-cp-XXXX)
sock=$root/skiff.sock
export SKIFF_HOST=unix://$sock
bin=$PWD/bin
./hack/mkbusybox.sh "$root/busybox.tar"
cg=/skiff-bench-cp-$$
echo "{\"cgroup-parent\": \"$cg\"}" > "$root/daemon.json"
"$bin/skiff" daemon -H "$SKIFF_HOST" --data-root "$root/data" --exec-root "$root/exec" --config-file "$root/daemon.json" >"$root/daemon.log" 2>&1 &
dpid=$!
cleanup() {
  ids=$("$bin/skiff" ps -aq 2>/dev/null || true)
  [ -n "$ids" ] && "$bin/skiff" rm -f -v $ids >/dev/null 2>&1 || true
  kill "$dpid" 2>/dev/null || true
  wait "$dpid" 2>/dev/null || true
  for c in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/"$cg"; do [ -d "$c" ] && rmdir "$c" 2>/dev/null; done
  rm -rf "$root"
}
trap cleanup EXIT
for _ in $(seq 100); do "$bin/skiff" version >/dev/null 2>&1 && break; sleep 0.05; done
"$bin/skiff" import "$root/busybox.tar" busybox >/dev/null

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
