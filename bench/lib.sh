# Shared set-up for the bench/ scripts (sourced, not run).
#
# bench_daemon SUBNET_OCTET: builds skiff, makes a work dir ($root; the exec root,
# $exec_root, is on tmpfs under /run as the default) and a busybox
# tarball ($tar), starts a daemon on its own data root, socket, cgroup parent,
# bridge (10.SUBNET_OCTET.0.1/16) and nftables table, imports busybox, and
# removes all of it on exit. Exports SKIFF_HOST; sets $bin, $root, $tar, $dpid.
bench_daemon() {
  local octet=$1
  SKIFF_NO_COMPOSE=1 ./hack/build.sh # the benchmarks do not use compose
  bin=$PWD/bin
  root=$(mktemp -d /tmp/skiff-bench-XXXX)
  bench_fresh_fs "$root"
  export SKIFF_HOST=unix://$root/skiff.sock
  tar=$root/busybox.tar
  ./hack/mkbusybox.sh "$tar"
  bench_cg=/skiff-bench-$$
  cat > "$root/daemon.json" <<JSON
{"cgroup-parent": "$bench_cg", "bridge": "skb$$", "bip": "10.$octet.0.1/16",
 "nft-table": "skiff_bench_$$", "ip-forward": false}
JSON
  # The exec root on tmpfs, as the default /run/skiff is.
  exec_root=/run/skiff-bench-$$
  "$bin/skiff" daemon -H "$SKIFF_HOST" --data-root "$root/data" --exec-root "$exec_root" \
    --config-file "$root/daemon.json" >"$root/daemon.log" 2>&1 &
  dpid=$!
  trap bench_cleanup EXIT
  for _ in $(seq 100); do "$bin/skiff" version >/dev/null 2>&1 && break; sleep 0.05; done
  "$bin/skiff" import "$tar" busybox >/dev/null
}

bench_cleanup() {
  local ids c
  ids=$("$bin/skiff" ps -aq 2>/dev/null || true)
  [ -n "$ids" ] && "$bin/skiff" rm -f -v $ids >/dev/null 2>&1 || true
  kill "$dpid" 2>/dev/null || true
  wait "$dpid" 2>/dev/null || true
  for c in /sys/fs/cgroup/*/"$bench_cg" /sys/fs/cgroup/"$bench_cg"; do
    [ -d "$c" ] && rmdir "$c" 2>/dev/null || true
  done
  if mountpoint -q "$root"; then umount "$root"; fi
  rm -rf "$root" "$root.img" "$exec_root"
}

# bench_fresh_fs DIR: with BENCH_FRESH_FS=1 (the storage benches set it),
# mounts a fresh ext4 (journaled, mkfs's defaults, a sparse file on this
# same disk) on DIR for the data root. This VM's root ext4 has no journal,
# and there creating files within minutes of deleting thousands is several
# times slower (the inode allocator skips recently deleted inodes one by
# one), so a run after a test suite or another bench would measure that.
# BENCH_ON_ROOT=1 keeps everything on /tmp as it is.
bench_fresh_fs() {
  [ "${BENCH_FRESH_FS:-}" = 1 ] && [ -z "${BENCH_ON_ROOT:-}" ] || return 0
  truncate -s 16G "$1.img" && mkfs.ext4 -q -F "$1.img" && mount -o loop "$1.img" "$1"
}

# median_ms RUNS COMMAND...: the median wall time of RUNS runs in ms, after 3 warm-ups.
median_ms() {
  local runs=$1; shift
  local times=() s e
  for _ in 1 2 3; do "$@" >/dev/null; done
  for _ in $(seq "$runs"); do
    s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
    times+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n |
    awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'
}

# docker_side: true when a Docker engine answers, for the side-by-side column.
docker_side() {
  DOCKER_HOST=unix:///var/run/docker.sock docker info >/dev/null 2>&1 || return 1
  export DOCKER_HOST=unix:///var/run/docker.sock
  docker image inspect busybox >/dev/null 2>&1 || docker import "$tar" busybox >/dev/null
}
