#!/usr/bin/env bash
# critest (sigs.k8s.io/cri-tools v1.37.0, the CRI validation suite) against
# skiff's CRI and, side by side, against Debian's containerd 1.6 with its
# CRI plugin, with the same images and the same registry hosts
# configuration; prints passed/failed/skipped per runtime and the specs
# whose outcome differs.
#
#   hack/critest.sh [skiff|containerd|both] [critest flags, e.g. --ginkgo.focus=REGEX]
#
# critest pulls its own image names (registry.k8s.io/e2e-test-images/...,
# gcr.io/k8s-staging-cri-tools/..., k8s.gcr.io/pause). Here a
# docker-registry on 127.0.0.1:5000 (own storage) holds busybox look-alikes
# under those repository paths (hack/critest/images, hack/critest/lookalike),
# and certs.d/<registry>/hosts.toml files send the three registries to it:
# skiff reads them through certs-d, containerd through its CRI registry
# config_path. No traffic leaves loopback. The digest-pinned image
# (test-image-digest@sha256:9700...) cannot be reproduced: that spec fails
# on both.
#
# Each runtime gets its own data root, sockets, CNI conf dir and bridge
# (bridge + host-local + portmap + loopback from containernetworking-plugins)
# and runs under a timeout (CRITEST_TIMEOUT, default 1800 s). Everything
# started here is stopped and removed at the end (hack/cri-lib.sh).
# Reports (JUnit XML, logs) are copied to $CRITEST_OUT (default
# /tmp/skiff-critest-results).
set -euo pipefail

main() {
  cd "$(dirname "$0")/.."
  . hack/cri-lib.sh
  local which=both
  case "${1:-}" in skiff|containerd|both) which=$1; shift ;; esac
  critest_args=("$@")
  timeout_s=${CRITEST_TIMEOUT:-1800}
  out=${CRITEST_OUT:-/tmp/skiff-critest-results}
  mkdir -p "$out"
  if [ "$which" = skiff ]; then cri_setup; else cri_setup containerd; fi
  cri_registry
  declare -gA took
  # containerd first: host ports (critest's 12000-12003) that a runtime's
  # teardown leaves forwarded would break the other's port specs, and
  # containerd is the reference.
  if [ "$which" != skiff ]; then
    cri_containerd
    run_critest containerd "$ctrd_ep"
    cri_stop_containerd
  fi
  if [ "$which" != containerd ]; then
    SKIFF_NO_COMPOSE=1 ./hack/build.sh >/dev/null
    cri_skiff
    run_critest skiff "$skiff_ep"
    cri_stop_skiff
  fi
  table
}

# run_critest NAME ENDPOINT: critest with a timeout, JUnit report, log.
run_critest() {
  local name=$1 ep=$2 t0 rc=0
  cri_log "critest against $name"
  t0=$(date +%s.%N)
  timeout "$timeout_s" "$critest" --runtime-endpoint "$ep" --image-endpoint "$ep" \
    --ginkgo.no-color --ginkgo.junit-report="$work/$name.xml" "${critest_args[@]}" \
    >"$work/critest-$name.log" 2>&1 || rc=$?
  took[$name]=$(awk "BEGIN{print $(date +%s.%N) - $t0}")
  cri_log "$name: critest exit $rc in ${took[$name]} s"
}

table() {
  python3 - "$work" "${took[skiff]:-}" "${took[containerd]:-}" <<'PY'
import sys, xml.etree.ElementTree as ET
work, t_skiff, t_ctrd = sys.argv[1:4]
names = {"skiff": t_skiff, "containerd": t_ctrd}
res = {}
for n in names:
    try:
        root = ET.parse(f"{work}/{n}.xml").getroot()
    except Exception:
        continue
    r = {}
    for tc in root.iter("testcase"):
        name = tc.get("name")
        if "Suite]" in name.split(" ")[0]:
            continue
        st = tc.get("status") or ""
        if tc.find("skipped") is not None or st == "skipped":
            st = "skipped"
        elif tc.find("failure") is not None or tc.find("error") is not None or st in ("failed", "panicked", "timedout", "interrupted"):
            st = "failed"
        else:
            st = "passed"
        r[name.replace("[It] ", "")] = st
    res[n] = r
print()
print("| runtime | specs | passed | failed | skipped | time |")
print("|---|---|---|---|---|---|")
for n, r in res.items():
    c = {k: sum(1 for v in r.values() if v == k) for k in ("passed", "failed", "skipped")}
    t = f"{float(names[n]):.0f} s" if names[n] else ""
    print(f"| {n} | {len(r)} | {c['passed']} | {c['failed']} | {c['skipped']} | {t} |")
for n, r in res.items():
    fails = sorted(k for k, v in r.items() if v == "failed")
    if fails:
        print(f"\n{n} failed:")
        for k in fails:
            print("  -", k)
if len(res) == 2:
    a, b = res["skiff"], res["containerd"]
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    print(f"\nspecs that differ ({len(diff)}): skiff / containerd")
    for k in diff:
        print(f"  - {a.get(k, '-')} / {b.get(k, '-')}: {k}")
PY
}

# The whole script is read before it runs (main at the end), so editing
# it during a run does not change that run.
main "$@"
