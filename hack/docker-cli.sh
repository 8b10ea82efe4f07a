#!/usr/bin/env bash
# Builds the docker CLI (the client only) from its Go module into OUTDIR/docker.
#   hack/docker-cli.sh OUTDIR [VERSION]
# The end-to-end tests drive skiff with the real docker CLI. Debian's docker.io
# package is not an option: it brings a dockerd, which must never run here.
#
# github.com/docker/cli has no go.mod (it versions by calendar, not SemVer); its
# dependencies are pinned in vendor.mod/vendor.sum, and the module zip carries
# no vendored sources. So the module's own tree is copied out of the module
# cache and built with vendor.mod as its go.mod, which gives the dependency
# versions Docker released the CLI with.
set -euo pipefail
out=${1:?usage: hack/docker-cli.sh OUTDIR [VERSION]}
version=${2:-28.2.2}
# The commit docker/cli tags v28.2.2 (what `docker version` prints as Git commit).
declare -A commits=([28.2.2]=e6534b4)
export GOFLAGS= GO111MODULE=on CGO_ENABLED=0
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cd "$work"
dir=$(go mod download -json "github.com/docker/cli@v${version}+incompatible" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "docker-cli.sh: github.com/docker/cli v${version} not downloaded" >&2; exit 1; }
cp -r "$dir" src
chmod -R u+w src
cd src
cp vendor.mod go.mod
cp vendor.sum go.sum
rm -rf vendor
# vendor.mod pins github.com/docker/docker by a pseudo-version of the commit
# that the release tag names; the module proxy serves that commit only under
# the tag, so require the tag (the same source).
docker_dep=$(sed -n 's/^[[:space:]]*github.com\/docker\/docker \(v[^ ]*\).*/\1/p' go.mod)
case "$docker_dep" in
  v${version}-0.*) go mod edit -require="github.com/docker/docker@v${version}+incompatible" ;;
esac
go build -mod=mod -trimpath \
  -ldflags "-X github.com/docker/cli/cli/version.Version=${version} -X github.com/docker/cli/cli/version.GitCommit=${commits[$version]:-v$version}" \
  -o "$work/docker" ./cmd/docker
mkdir -p "$out"
mv "$work/docker" "$out/docker"
"$out/docker" --version
