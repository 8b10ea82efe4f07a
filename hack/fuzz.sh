#!/usr/bin/env bash
# Runs every fuzz target for a short budget: hack/test.sh calls it after
# vet. The seed corpora (f.Add and testdata/fuzz/FuzzX/) also run as plain
# tests in `go test ./...`. A crash writes its input to the package's
# testdata/fuzz/FuzzX/: commit it with the fix, so it stays a regression
# test. The budgets are execution counts sized to a few seconds each here:
# a duration budget can fail with "context deadline exceeded" and no
# crasher when the deadline races a busy worker (go.dev/issue/75804).
# For a longer local run: FUZZTIME=1m hack/fuzz.sh, or one target:
#   go test ./internal/archive -run '^$' -fuzz '^FuzzApply$' -fuzztime 1m
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(
  ./internal/archive:FuzzApply:50x                  # tar apply: whiteouts, links, .., nothing escapes
  ./internal/image:FuzzPlanLoad:2000x               # docker load: manifest.json / index.json
  ./internal/image:FuzzLoad:10x
  ./internal/registry:FuzzManifestDecode:300x       # pull: manifest, index, config
  ./internal/builder:FuzzDockerfile:300x            # Dockerfile front end, ONBUILD, heredocs
  ./internal/cli/opts:FuzzParseVolumeSpec:5000x     # -v
  ./internal/cli/opts:FuzzMountOpt:1000x            # --mount
  ./internal/cli:FuzzParsePublish:1000x             # -p
  ./internal/monitor:FuzzLineSplitter:5000x         # monitor: output -> log records
  ./internal/monitor:FuzzErrorLine:5000x            # monitor: status line
  ./internal/logger/jsonfile:FuzzDecode:5000x       # json-file reader
  ./internal/logger/jsonfile:FuzzRecordRoundTrip:5000x
)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in "${targets[@]}"; do
  IFS=: read -r pkg name budget <<<"$t"
  budget=${FUZZTIME:-$budget}
  echo "fuzz $pkg $name ($budget)"
  go test "$pkg" -run '^$' -fuzz "^$name\$" -fuzztime "$budget" -fuzzminimizetime 1s >"$out" 2>&1 ||
    { cat "$out"; exit 1; }
done
