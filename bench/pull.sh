#!/usr/bin/env bash
# Pull benchmark: an image of about 270 MB unpacked in ~16,000 files (the Go
# toolchain directory, one gzip layer) pulled from a local docker-registry
# with a cold cache; push time is reported too. Then the latency of an
# unrelated rmi while a pull runs (the pull through a proxy that throttles
# blob downloads), next to the same rmi alone. Runs Docker side by side
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
  for p in ${ppid_:-} ${xpid:-} ${dpid:-} ${dpid2:-} ${dpid3:-}; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  for c in /sys/fs/cgroup/*/skiff-bench-[abc] /sys/fs/cgroup/skiff-bench-[abc]; do [ -d "$c" ] && rmdir "$c" 2>/dev/null || true; done
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
# The CRI is off: two daemons cannot share its default socket.
start_daemon() { # NAME
  echo '{"cgroup-parent": "/skiff-bench-'$1'", "ip-forward": false, "bridge": "skpull'$1'", "nft-table": "skiff_pull_'$1'"}' > "$work/$1.json"
  ./bin/skiff daemon -H unix://$work/$1.sock --data-root "$work/$1" --exec-root "$work/$1-exec" \
    --config-file "$work/$1.json" --cri-socket "" >"$work/$1.log" 2>&1 &
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

# --- rmi during a pull -------------------------------------------------------
# A third daemon, C, pulls the image through a proxy that sends blobs at
# $rate bytes/s, so the pull lasts several seconds. Meanwhile it removes
# images that have nothing to do with the pull: a tag of an image that has
# another (an untag) and a whole image (its layer and blobs go, a GC runs).
# The same removals alone come first. Before leases (issue 14) an rmi waited
# for the whole pull. SLOW_RATE sets the proxy's rate (bytes/s).
rate=${SLOW_RATE:-8000000}
pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$reg" "$pport" "$rate" >"$work/proxy.log" 2>&1 <<'PY' & xpid=$!
import http.client, http.server, socketserver, sys, time
upstream, port, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host")}
        c = http.client.HTTPConnection(upstream)
        c.request(self.command, self.path, body=body, headers=hdrs)
        r = c.getresponse()
        length = r.getheader("Content-Length")
        data = None if length is not None or self.command == "HEAD" else r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", length if data is None else str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        slow = "/blobs/" in self.path
        t0, sent = time.monotonic(), 0
        while True:
            b = r.read(256 << 10) if data is None else data[sent:sent + (256 << 10)]
            if not b:
                break
            self.wfile.write(b)
            sent += len(b)
            ahead = sent / rate - (time.monotonic() - t0)
            if slow and ahead > 0:
                time.sleep(ahead)
        c.close()
    do_GET = do_HEAD = forward
    def log_message(self, *a):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
Server(("127.0.0.1", port), Proxy).serve_forever()
PY
start_daemon c; dpid3=$!
skc() { ./bin/skiff -H unix://$work/c.sock "$@"; }
for _ in $(seq 100); do skc version >/dev/null 2>&1 && curl -sf "http://127.0.0.1:$pport/v2/" >/dev/null && break; sleep 0.1; done

runs=9
mkdir -p "$work/small"
# Images to remove: a tagged one (kept, its tags removed one by one) and
# 2*runs distinct one-file images.
echo base > "$work/small/f"; tar -C "$work/small" -cf "$work/small.tar" f
skc import "$work/small.tar" keep:1 >/dev/null
for i in $(seq $((2 * runs))); do
  echo "$i" > "$work/small/f"; tar -C "$work/small" -cf "$work/small$i.tar" f
  skc import "$work/small$i.tar" gone:$i >/dev/null
done
for i in $(seq $((2 * runs))); do skc tag keep:1 keep:t$i; done

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
# rmi_times KIND FROM: one rmi per line, ms; during a pull also whether the
# pull was still running when the rmi returned (1) or not (0). The requests
# go to the API with curl (DELETE /images/NAME, as `skiff rmi` sends it), so
# the CLI's own start (100-200 ms on this VM when it is busy) is not in them.
api() { curl -sf -o /dev/null --unix-socket "$work/c.sock" "$@"; }
rmi_times() {
  local kind=$1 from=$2 i s
  for i in $(seq "$from" $((from + runs - 1))); do
    s=$(date +%s%N)
    case $kind in
      tag) api -X DELETE "http://skiff/images/keep:t$i" ;;
      image) api -X DELETE "http://skiff/images/gone:$i" ;;
      version) api http://skiff/version ;;
    esac
    echo "$(ms_since "$s") $( [ -n "${ppid_:-}" ] && kill -0 "$ppid_" 2>/dev/null && echo 1 || echo 0)"
  done
}
ver_alone=$(rmi_times version 1); tag_alone=$(rmi_times tag 1); img_alone=$(rmi_times image 1)

s=$(date +%s%N)
skc pull -q 127.0.0.1:$pport/bench/go:latest >/dev/null & ppid_=$!
# Wait until the layer is coming in (the pull holds its lease by then).
for _ in $(seq 200); do [ -n "$(ls "$work/c/content/ingest" 2>/dev/null)" ] && break; sleep 0.05; done
ver_pull=$(rmi_times version 1); tag_pull=$(rmi_times tag $((runs + 1))); img_pull=$(rmi_times image $((runs + 1)))
wait "$ppid_"; pull_ms=$(ms_since "$s"); ppid_=
report() { # LABEL ALONE DURING
  local first during
  first=$(echo "$3" | head -1 | cut -d' ' -f1)
  during=$(echo "$3" | awk '$2 == 1' | wc -l)
  printf '%-28s alone %4s ms | during a pull: first %5s ms, median %5s ms (%d of %d returned while the pull ran)\n' \
    "$1" "$(echo "$2" | cut -d' ' -f1 | median)" "$first" "$(echo "$3" | cut -d' ' -f1 | median)" "$during" "$runs"
}
echo "rmi during a pull (pull through a proxy at $((rate / 1000000)) MB/s: $(echo "scale=1; $pull_ms / 1000" | bc) s; medians of $runs):"
report "rmi of a tag (untag):" "$tag_alone" "$tag_pull"
report "rmi of an image (+ GC):" "$img_alone" "$img_pull"
# What any request costs on this machine meanwhile (an API round trip that
# touches no store): the floor the rmis above sit on.
report "GET /version (no store):" "$ver_alone" "$ver_pull"
