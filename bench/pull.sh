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
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
cleanup() {
  [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null || true
  [ -n "${rpid:-}" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: $reg}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 & rpid=$!

sock=$work/skiff.sock
echo '{"cgroup-parent": "/skiff-bench"}' > "$work/daemon.json"
./bin/skiff daemon -H unix://$sock --data-root "$work/data" --exec-root "$work/exec" \
  --config-file "$work/daemon.json" >"$work/daemon.log" 2>&1 & dpid=$!
sk() { ./bin/skiff -H unix://$sock "$@"; }
for _ in $(seq 100); do sk version >/dev/null 2>&1 && break; sleep 0.1; done

# The image: the toolchain as one gzip layer, as registries hold layers.
tar -C "$(dirname "$src")" -cf - "$(basename "$src")" | gzip -1 > "$work/go.tar.gz"
sync; echo 3 > /proc/sys/vm/drop_caches
t0=$(date +%s.%N); sk import "$work/go.tar.gz" $reg/bench/go:latest >/dev/null; t1=$(date +%s.%N)
printf 'skiff import of the same layer (the unpack floor, no network): %.2f s\n' "$(echo "$t1 - $t0" | bc)"
echo "image: $(du -sh "$src" | cut -f1) in $(find "$src" | wc -l) files, layer $(du -h "$work/go.tar.gz" | cut -f1) gzip"

t0=$(date +%s.%N); sk push -q $reg/bench/go:latest >/dev/null; t1=$(date +%s.%N)
printf 'skiff push: %.2f s\n' "$(echo "$t1 - $t0" | bc)"
sk rmi $reg/bench/go:latest >/dev/null
sync; echo 3 > /proc/sys/vm/drop_caches
t0=$(date +%s.%N); sk pull -q $reg/bench/go:latest >/dev/null; t1=$(date +%s.%N)
printf 'skiff pull: %.2f s (cold cache)\n' "$(echo "$t1 - $t0" | bc)"

if [ -S /var/run/docker.sock ] && docker version >/dev/null 2>&1; then
  docker rmi -f $reg/bench/go:latest >/dev/null 2>&1 || true
  sync; echo 3 > /proc/sys/vm/drop_caches
  t0=$(date +%s.%N); docker pull -q $reg/bench/go:latest >/dev/null; t1=$(date +%s.%N)
  printf 'docker pull: %.2f s (cold cache)\n' "$(echo "$t1 - $t0" | bc)"
  docker rmi -f $reg/bench/go:latest >/dev/null 2>&1 || true
fi
