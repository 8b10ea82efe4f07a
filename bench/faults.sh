#!/usr/bin/env bash
# Faults under load (issue 15), skiff and Docker side by side when a Docker
# engine answers on /var/run/docker.sock:
#   1. N (1000) `run --rm busybox` at P (8) in parallel; a tenth of them are
#      `sleep 2` victims killed at a random moment (0-1.5 s) by `kill` or
#      `rm -f` (alternately). Prints the time, the failures, what is left
#      once all runs returned (mounts, veths, netns, cgroups, processes,
#      nftables rules, containers), stuck containers and the engine's RSS
#      before and after (target: within 10%).
#   2. how long a container whose monitor was SIGKILLed takes to be cleaned
#      up: from the kill to its process gone, its cgroup removed and the
#      exit recorded (median of M, 5).
# It uses its own data root, socket, bridge, table and cgroup parent.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
P=${P:-8}
M=${M:-5}
. bench/lib.sh
bench_daemon 243

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k/1024}'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# One load job, run by xargs: job I of the load against CLI (skiff or
# docker). Prints "fail" for an unexpected failure.
job() {
  local cli=$1 i=$2 name="$FLT-$2" rc=0
  if [ $((i % 10)) -ne 0 ]; then
    "$cli" run --rm busybox true >/dev/null 2>&1 || echo fail
    return
  fi
  "$cli" run --rm --name "$name" busybox sleep 2 >/dev/null 2>&1 &
  local run=$!
  sleep "$(awk -v r=$RANDOM 'BEGIN {printf "%.3f", r % 1500 / 1000}')"
  if [ $((i % 20)) -eq 0 ]; then
    "$cli" kill "$name" >/dev/null 2>&1 || true
  else
    "$cli" rm -f "$name" >/dev/null 2>&1 || true
  fi
  wait "$run" || rc=$?
  # Killed: 137; removed under it: the CLI's error. Both are expected.
  [ "$rc" -le 137 ] || echo fail
}
export -f job
export FLT=flt$$

# counts_skiff: "mounts veths netns cgroups processes rules containers".
counts_skiff() {
  local mounts veths netns cgs procs rules ctrs p
  mounts=$(grep -c -e "$root" -e "$exec_root" /proc/self/mountinfo || true)
  veths=$(ls "/sys/class/net/skb$$/brif" 2>/dev/null | wc -l)
  netns=$(ls "$exec_root/netns" 2>/dev/null | wc -l)
  cgs=$(find /sys/fs/cgroup/*/"$bench_cg" /sys/fs/cgroup/"$bench_cg" -mindepth 1 -type d 2>/dev/null | wc -l)
  procs=0
  # Monitors work in their bundle (the one started ahead is still in /);
  # container processes are in the cgroups counted above.
  for p in $(pgrep -f "skiff-shim monitor" || true); do
    case $(readlink "/proc/$p/cwd" 2>/dev/null) in "$exec_root"/*) procs=$((procs + 1)) ;; esac
  done
  rules=$(nft -a list table ip "skiff_bench_$$" 2>/dev/null | grep -c 'handle' || true)
  ctrs=$("$bin/skiff" ps -aq | wc -l)
  echo "$mounts $veths $netns $cgs $procs $rules $ctrs"
}

# counts_docker: the same for Docker, as far as it can be seen from outside.
counts_docker() {
  local mounts veths shims ctrs
  mounts=$(grep -c overlay /proc/self/mountinfo || true)
  veths=$(ip -o link show type veth 2>/dev/null | wc -l)
  shims=$(pgrep -fc containerd-shim || true)
  ctrs=$(docker ps -aq | wc -l)
  echo "$mounts $veths - - $shims - $ctrs"
}

# load CLI COUNTS: runs the load, waits (10 s at most) for --rm removals to
# finish; prints "seconds failures before-counts after-counts stuck".
load() {
  local cli=$1 counts=$2 before after s e fails stuck
  before=$($counts)
  s=$(now_ms)
  fails=$(seq "$N" | xargs -P "$P" -I{} bash -c "job $cli {}" | grep -c fail || true)
  e=$(now_ms)
  for _ in $(seq 100); do
    [ "$("$cli" ps -aq | wc -l)" -eq "$(echo "$before" | awk '{print $7}')" ] && break
    sleep 0.1
  done
  after=$($counts)
  stuck=$("$cli" ps -a --format '{{.Names}}:{{.Status}}' | grep "$FLT" | tr '\n' ' ' || true)
  echo "$(awk -v ms=$((e - s)) 'BEGIN {printf "%.1f", ms/1000}')|$fails|$before|$after|${stuck:-none}"
}

# alive PID: the process exists and is not a zombie (the container's
# process, re-parented to the host's PID 1 when its monitor died, stays a
# zombie until that reaps it, which is not the engine's doing).
alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

# monitor_death CLI: kill -9 the monitor (shim) of `run -d sleep 100` and
# time until the container's process is gone and it shows exited.
monitor_death() {
  local cli=$1 id pid mon s e times=()
  for _ in $(seq "$M"); do
    id=$("$cli" run -d busybox sleep 100)
    pid=$("$cli" inspect -f '{{.State.Pid}}' "$id")
    mon=$(awk '{print $4}' "/proc/$pid/stat")
    s=$(date +%s%N)
    kill -9 "$mon"
    for _ in $(seq 2000); do
      if ! alive "$pid" && [ "$("$cli" inspect -f '{{.State.Running}}' "$id")" = false ]; then break; fi
      sleep 0.005
    done
    e=$(date +%s%N)
    alive "$pid" && { echo "never"; return; }
    times+=($(( (e - s) / 1000 )))
    "$cli" rm -f "$id" >/dev/null
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.0f", a[int((NR+1)/2)]/1000}'
}

# Warm up (the pool, caches), then the RSS the engine settles at.
for _ in $(seq 20); do "$bin/skiff" run --rm busybox true >/dev/null; done
sleep 2
rss0=$(rss_kib "$dpid")
PATH=$bin:$PATH
IFS='|' read -r s_time s_fails s_before s_after s_stuck < <(load skiff counts_skiff)
sleep 5 # the Go runtime returns freed heap to the OS in the background
rss1=$(rss_kib "$dpid")
s_death=$(monitor_death skiff)

d_time="-"; d_fails="-"; d_before="- - - - - - -"; d_after="- - - - - - -"; d_stuck="-"; d_rss0="-"; d_rss1="-"; d_death="-"
if docker_side; then
  dd=$(pgrep -x dockerd | head -1)
  d_rss0=$(mib "$(rss_kib "$dd")")
  IFS='|' read -r d_time d_fails d_before d_after d_stuck < <(load docker counts_docker)
  sleep 5
  d_rss1=$(mib "$(rss_kib "$dd")")
  d_death=$(monitor_death docker)
fi

delta() { # before after -> per field after-before
  paste <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$2") |
    awk '{ if ($1 == "-" || $2 == "-") printf "- "; else printf "%d ", $2 - $1 }'
}
read -r -a sl <<<"$(delta "$s_before" "$s_after")"
read -r -a dl <<<"$(delta "$d_before" "$d_after")"
pct=$(awk -v a="$rss0" -v b="$rss1" 'BEGIN {printf "%+.1f%%", (b - a) * 100 / a}')

printf '%-46s %16s %16s\n' "measure" "skiff" "docker"
printf '%-46s %16s %16s\n' "$N run --rm at $P in parallel, 1/10 killed (s)" "$s_time" "$d_time"
printf '%-46s %16s %16s\n' "unexpected failures" "$s_fails" "$d_fails"
i=0
for what in mounts veths netns cgroups processes "nft rules" containers; do
  printf '%-46s %16s %16s\n' "left after the load: $what" "${sl[$i]}" "${dl[$i]}"
  i=$((i + 1))
done
printf '%-46s %16s %16s\n' "stuck containers" "$s_stuck" "$d_stuck"
printf '%-46s %16s %16s\n' "engine RSS before -> after (MiB)" "$(mib "$rss0") -> $(mib "$rss1") ($pct)" "$d_rss0 -> $d_rss1"
printf '%-46s %16s %16s\n' "monitor killed -> container cleaned up (ms)" "$s_death" "$d_death"
