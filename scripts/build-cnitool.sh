#!/usr/bin/env bash
# Builds scripts/cnitool (a small libcni driver) into target/cnitool, from Debian's libcni 1.1.2 source
# (golang-github-appc-cni-dev) with golang-go, offline, in GOPATH mode. Prints the binary's path.
#   scripts/build-cnitool.sh [OUTPUT]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/target/cnitool}"
gopath=/usr/share/gocode
if ! command -v go >/dev/null || [ ! -d "$gopath/src/github.com/containernetworking/cni/libcni" ]; then
  echo "build-cnitool: needs golang-go and golang-github-appc-cni-dev (scripts/install-deps.sh installs them)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")" "$root/target/go-cache"
# Write to a temporary name and rename, so that concurrent callers never run a half-written binary.
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(
  cd "$root/scripts/cnitool"
  GO111MODULE=off GOPATH="$gopath" GOCACHE="$root/target/go-cache" GOFLAGS= CGO_ENABLED=0 \
    go build -trimpath -o "$tmp" .
)
mv -f "$tmp" "$out"
echo "$out"
