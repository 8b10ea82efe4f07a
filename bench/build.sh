#!/usr/bin/env bash
# Dockerfile build benchmark (issue 7), side by side with Docker's legacy
# builder (DOCKER_BUILDKIT=0) when a Docker engine answers:
#   FROM busybox / COPY go /usr/local/go / RUN echo built > /built
# with a copy of this machine's Go toolchain (`go env GOROOT`, ~270 MB in
# ~16,000 files) as the context:
#   1. first build (empty cache)
#   2. rebuild with nothing changed (median of R runs)
#   3. rebuild after changing one file in the context: only the COPY and
#      the steps after it may run, which the script checks in the output.
# The context lives in /dev/shm when it has room, so the disk's speed at
# reading it is not measured (both engines read the same copy). Everything
# made is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${R:-5}
. bench/lib.sh
BENCH_FRESH_FS=1 bench_daemon 248

scratch=$root
if [ "$(df --output=avail -k /dev/shm 2>/dev/null | tail -1)" -gt $((2 * 1024 * 1024)) ] 2>/dev/null; then
  scratch=$(mktemp -d /dev/shm/skiff-bench-build-XXXX)
fi
ctx=$scratch/ctx
mkdir -p "$ctx"
cp -a "$(go env GOROOT)" "$ctx/go"
cat > "$ctx/Dockerfile" <<'EOF'
FROM busybox
COPY go /usr/local/go
RUN echo built > /built
EOF
files=$(find "$ctx/go" | wc -l)
size=$(du -sm "$ctx/go" | cut -f1)
cleanup_all() {
  [ "$scratch" != "$root" ] && rm -rf "$scratch"
  if [ -n "${docker_tags:-}" ]; then docker rmi -f $docker_tags >/dev/null 2>&1 || true; fi
  bench_cleanup
}
trap cleanup_all EXIT

# secs COMMAND...: wall time of one run in seconds; the output is kept in $log.
log=$root/build.log
secs() {
  local s e
  s=$(date +%s%N); "$@" >"$log" 2>&1; e=$(date +%s%N)
  awk -v n=$(( (e - s) / 1000000 )) 'BEGIN {printf "%.2f", n/1000}'
}

# only_copy_on: "ok" when the build in $log re-ran COPY and RUN and used the
# cache for nothing after FROM.
only_copy_on() {
  if grep -q 'Step 2/3 : COPY' "$log" && ! sed -n '/Step 2\/3/,$p' "$log" | grep -q 'Using cache' &&
    grep -q 'Running in' "$log"; then echo ok; else echo "NOT (see below)"; cat "$log" >&2; fi
}

# one engine: first, unchanged (median), one file changed
measure() {
  local first unchanged changed check
  first=$(secs "$@" -t bench-build:1 "$ctx")
  unchanged=$(median_ms "$R" "$@" -t bench-build:1 "$ctx")
  unchanged=$(awk -v m="$unchanged" 'BEGIN {printf "%.2f", m/1000}')
  echo "// $(date +%s%N)" >> "$ctx/go/VERSION"
  changed=$(secs "$@" -t bench-build:1 "$ctx")
  check=$(only_copy_on)
  echo "$first $unchanged $changed $check"
}

read -r s_first s_unch s_changed s_check < <(measure "$bin/skiff" build)

d_first="-"; d_unch="-"; d_changed="-"; d_check="-"
if docker_side; then
  docker_tags="bench-build:1"
  read -r d_first d_unch d_changed d_check < <(DOCKER_BUILDKIT=0 measure docker build)
  unset DOCKER_HOST
fi

echo "context: $size MB in $files files (Go toolchain copy), R=$R"
printf '%-50s %10s %10s\n' "measure (seconds)" "skiff" "docker"
printf '%-50s %10s %10s\n' "first build" "$s_first" "$d_first"
printf '%-50s %10s %10s\n' "rebuild, nothing changed (median)" "$s_unch" "$d_unch"
printf '%-50s %10s %10s\n' "rebuild, one file changed" "$s_changed" "$d_changed"
printf '%-50s %10s %10s\n' "  only COPY and RUN re-ran" "$s_check" "$d_check"
