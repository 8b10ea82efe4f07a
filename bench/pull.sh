#!/usr/bin/env bash
# Pull benchmark: an image of about 270 MB unpacked in ~16,000 files (the Go
# toolchain directory, one gzip layer) pulled from a local docker-registry
# with a cold cache; push time is reported too. Runs Docker side by side
# when a docker daemon answers on /var/run/docker.sock.
#   usage: bench/pull.sh [GOROOT]   (needs root, bin/skiff from hack/build.sh, docker-registry)
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-$(go env GOROOT)}
work=$(mktemp -d /tmp/skiff-bench-pull.XXXXXX)
# The data roots and the registry go on a fresh ext4 (see bench_fresh_fs).
. bench/lib.sh
BENCH_FRESH_FS=1 bench_fresh_fs "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
cleanup() {
  for p in ${dpid:-} ${dpid2:-}; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  for c in /sys/fs/cgroup/*/skiff-bench-[ab] /sys/fs/cgroup/skiff-bench-[ab]; do [ -d "$c" ] && rmdir "$c" 2>/dev/null || true; done
  [ -n "${rpid:-}" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null || true
  if mountpoint -q "$work"; then umount "$work"; fi
  rm -rf "$work" "$work.img"
}
trap cleanup EXIT

cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: $reg}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 & rpid=$!

# Two daemons, each on its own data root: A imports and pushes, B pulls into an
# empty store. (No rmi before the pull: on an ext4 without a journal, like this
# VM's root, creating files within minutes of deleting thousands is many times
# slower -- the allocator skips recently deleted inodes one by one -- and that
# would measure the file system, not the pull.)
start_daemon() { # NAME
  echo '{"cgroup-parent": "/skiff-bench-'$1'", "ip-forward": false, "bridge": "skpull'$1'", "nft-table": "skiff_pull_'$1'"}' > "$work/$1.json"
  ./bin/skiff daemon -H unix://$work/$1.sock --data-root "$work/$1" --exec-root "$work/$1-exec" \
    --config-file "$work/$1.json" >"$work/$1.log" 2>&1 &
}
start_daemon a; dpid=$!
start_daemon b; dpid2=$!
ska() { ./bin/skiff -H unix://$work/a.sock "$@"; }
skb() { ./bin/skiff -H unix://$work/b.sock "$@"; }
for _ in $(seq 100); do ska version >/dev/null 2>&1 && skb version >/dev/null 2>&1 && break; sleep 0.1; done

# The image: the toolchain as one gzip layer, as registries hold layers.
tar -C "$(dirname "$src")" -cf - "$(basename "$src")" | gzip -1 > "$work/go.tar.gz"
sync; echo 3 > /proc/sys/vm/drop_caches
t0=$(date +%s.%N); ska import "$work/go.tar.gz" $reg/bench/go:latest >/dev/null; t1=$(date +%s.%N)
printf 'skiff import of the same layer (the unpack floor, no network): %.2f s\n' "$(echo "$t1 - $t0" | bc)"
echo "image: $(du -sh "$src" | cut -f1) in $(find "$src" | wc -l) files, layer $(du -h "$work/go.tar.gz" | cut -f1) gzip"

t0=$(date +%s.%N); ska push -q $reg/bench/go:latest >/dev/null; t1=$(date +%s.%N)
printf 'skiff push: %.2f s\n' "$(echo "$t1 - $t0" | bc)"
sync; echo 3 > /proc/sys/vm/drop_caches
t0=$(date +%s.%N); skb pull -q $reg/bench/go:latest >/dev/null; t1=$(date +%s.%N)
printf 'skiff pull: %.2f s (cold cache)\n' "$(echo "$t1 - $t0" | bc)"

if [ -S /var/run/docker.sock ] && docker version >/dev/null 2>&1; then
  docker rmi -f $reg/bench/go:latest >/dev/null 2>&1 || true
  sync; echo 3 > /proc/sys/vm/drop_caches
  t0=$(date +%s.%N); docker pull -q $reg/bench/go:latest >/dev/null; t1=$(date +%s.%N)
  printf 'docker pull: %.2f s (cold cache)\n' "$(echo "$t1 - $t0" | bc)"
  docker rmi -f $reg/bench/go:latest >/dev/null 2>&1 || true
fi
