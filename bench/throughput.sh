#!/usr/bin/env bash
# Host → container TCP throughput through a published port (DNAT, no userland
# proxy) against host → container IP directly, on the default bridge. The
# issue's goal: the published port gives at least 80% of the direct rate.
# busybox nc receives in the container, python3 sends from the host; its own daemon, bridge, table and cgroup parent.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${MB:-2000}
. bench/lib.sh
bench_daemon 239

# A sink that accepts one connection after another and discards the bytes.
"$bin/skiff" run -d --name sink -p 127.0.0.1:15201:5201 busybox sh -c 'while :; do nc -l -p 5201 >/dev/null; done' >/dev/null
ip=$("$bin/skiff" inspect -f '{{.NetworkSettings.IPAddress}}' sink)
sleep 0.3
rate() { # host port → MB/s; python3 sends, the container's nc discards
  python3 - "$1" "$2" "$MB" <<'PY'
import socket, sys, time
host, port, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port))
buf = bytes(1 << 20)
t = time.perf_counter()
for _ in range(mb):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR)
s.recv(1)  # returns when the receiver has read everything and closed
print(round(mb / (time.perf_counter() - t)))
PY
}
direct=$(rate "$ip" 5201); sleep 0.2
published=$(rate 127.0.0.1 15201); sleep 0.2
direct2=$(rate "$ip" 5201); sleep 0.2
published2=$(rate 127.0.0.1 15201)
printf '%-52s %10s\n' "host → container IP directly (MB/s, 2 runs)" "$direct $direct2"
printf '%-52s %10s\n' "host 127.0.0.1 → published port (MB/s, 2 runs)" "$published $published2"
awk -v d="$direct" -v d2="$direct2" -v p="$published" -v p2="$published2" 'BEGIN {printf "published / direct: %.0f%%\n", 100 * (p + p2) / (d + d2)}'
