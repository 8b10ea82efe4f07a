#!/usr/bin/env bash
# CRI benchmarks, skiff and Debian's containerd 1.6 side by side in one run
# (hack/cri-lib.sh: same look-alike images from a local registry, same CNI
# plugins, own sockets and directories, all removed at the end):
#
#  1. `crictl runp` + `crictl create` + `crictl start` of a busybox pod to a
#     running container, and its teardown (`crictl stopp` + `crictl rmp`):
#     median and range of N rounds (CRI_BENCH_ROUNDS, default 10);
#  2. the engine's memory with 30 pods running (CRI_BENCH_PODS): RSS of the
#     engine process (skiffd / containerd), and the summed PSS of the
#     per-pod helpers (skiff's monitors, one per pause process and one per
#     container / containerd's shims, one per pod).
#
#   bench/cri.sh [skiff|containerd|both]
set -euo pipefail

main() {
  cd "$(dirname "$0")/.."
  . hack/cri-lib.sh
  local which=both
  case "${1:-}" in skiff|containerd|both) which=$1 ;; esac
  rounds=${CRI_BENCH_ROUNDS:-10}
  npods=${CRI_BENCH_PODS:-30}
  image=registry.k8s.io/e2e-test-images/busybox:1.29-2
  if [ "$which" = skiff ]; then cri_setup; else cri_setup containerd; fi
  cri_registry
  declare -gA res
  if [ "$which" != containerd ]; then
    SKIFF_NO_COMPOSE=1 ./hack/build.sh >/dev/null
    cri_skiff
    bench skiff "$skiff_ep" "$skiff_pid" "skiff-shim monitor"
    cri_stop_skiff
  fi
  if [ "$which" != skiff ]; then
    cri_containerd
    bench containerd "$ctrd_ep" "$ctrd_pid" "containerd-shim-runc-v2"
    cri_stop_containerd
  fi
  echo
  echo "| measure | skiff | containerd 1.6 |"
  echo "|---|---|---|"
  echo "| runp + create + start, median of $rounds (min–max) | ${res[skiff.up]:--} | ${res[containerd.up]:--} |"
  echo "| stopp + rmp, median of $rounds (min–max) | ${res[skiff.down]:--} | ${res[containerd.down]:--} |"
  echo "| engine RSS, idle (image pulled) | ${res[skiff.rss0]:--} | ${res[containerd.rss0]:--} |"
  echo "| engine RSS, $npods pods running | ${res[skiff.rss]:--} | ${res[containerd.rss]:--} |"
  echo "| per-pod helpers, $npods pods (sum of PSS) | ${res[skiff.helpers]:--} | ${res[containerd.helpers]:--} |"
}

now() { date +%s%N; }

# crictl_quiet: crictl, its warnings (no /etc/crictl.yaml, no cgroup
# parent) to a log.
crictl_quiet() { "$crictl" "$@" 2>>"$work/crictl.log"; }

rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }

# pss_kib PID: the process's proportional share of its memory (pages
# shared between the helpers, their executable's text first, count once).
pss_kib() { awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup"; }

mib() { awk "BEGIN{printf \"%.1f MiB\", $1/1024}"; }

# stats NAME VALUES...(ms): "median ms (min–max)"
stats() {
  printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f ms (%.0f–%.0f)", m, a[1], a[NR]}'
}

# bench NAME ENDPOINT ENGINE_PID HELPER_CMDLINE
bench() {
  local name=$1 ep=$2 epid=$3 helper=$4 i t0 t1 t2 pod ctr ups=() downs=()
  local c=(crictl_quiet -r "$ep" -i "$ep" -t 60s)
  local d=$work/bench-$name
  mkdir -p "$d"
  cri_log "$name: pull $image"
  "${c[@]}" pull "$image" >/dev/null
  sleep 2
  res[$name.rss0]=$(mib "$(rss_kib "$epid")")
  cri_log "$name: $rounds rounds of runp + create + start, stopp + rmp"
  printf '{"image": {"image": "%s"}, "command": ["sleep", "3600"], "metadata": {"name": "c"}, "linux": {}}\n' "$image" >"$d/ctr.json"
  for i in $(seq "$rounds"); do
    pod_json "$d/pod.json" "bench-$i"
    t0=$(now)
    pod=$("${c[@]}" runp "$d/pod.json")
    ctr=$("${c[@]}" create "$pod" "$d/ctr.json" "$d/pod.json")
    "${c[@]}" start "$ctr" >/dev/null
    t1=$(now)
    "${c[@]}" stopp "$pod" >/dev/null
    "${c[@]}" rmp "$pod" >/dev/null
    t2=$(now)
    ups+=($(( (t1 - t0) / 1000000 ))) downs+=($(( (t2 - t1) / 1000000 )))
  done
  res[$name.up]=$(stats "${ups[@]}")
  res[$name.down]=$(stats "${downs[@]}")
  cri_log "$name: $npods pods running"
  for i in $(seq "$npods"); do
    pod_json "$d/pod.json" "mem-$i"
    pod=$("${c[@]}" runp "$d/pod.json")
    ctr=$("${c[@]}" create "$pod" "$d/ctr.json" "$d/pod.json")
    "${c[@]}" start "$ctr" >/dev/null
  done
  local running
  running=$("${c[@]}" ps -q --state running | wc -l)
  [ "$running" = "$npods" ] || cri_log "$name: $running of $npods containers running"
  sleep 2
  res[$name.rss]=$(mib "$(rss_kib "$epid")")
  local sum=0 n=0 p
  for p in $(cri_pids_with "$work"); do
    tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF -- "$helper" || continue
    sum=$((sum + $(pss_kib "$p"))); n=$((n + 1))
  done
  res[$name.helpers]="$(mib "$sum") ($n processes)"
  # A removal racing another may fail once; the second pass finds the rest.
  "${c[@]}" rmp -fa >/dev/null || "${c[@]}" rmp -fa >/dev/null || true
}

pod_json() {
  printf '{"metadata": {"name": "%s", "namespace": "bench", "uid": "uid-%s-%s", "attempt": 0}, "linux": {}, "log_directory": ""}\n' \
    "$2" "$2" "$$" >"$1"
}

main "$@"
