#!/usr/bin/env bash
# Builds the real kubelet from the Go module proxy (no git, no download site):
#
#   deploy/build-kubelet.sh OUT [VERSION]     OUT/kubelet, VERSION default v1.37.2
#
# k8s.io/kubernetes is published as a module whose go.mod replaces each of
# its staging modules (k8s.io/api, k8s.io/client-go, ...) with a directory of
# its own tree (./staging/src/k8s.io/X) and vendors everything. The module
# proxy's copy builds once those replaces are swapped for requirements on the
# published k8s.io/X modules of the same release (v0.MINOR.PATCH), vendor/ and
# go.work are dropped, and the build resolves modules itself (-mod=mod). The
# result is the release's kubelet, statically linked (CGO_ENABLED=0). About 4
# minutes and 2 GB of memory on a 2-core machine; deploy/setup.sh calls this
# only when OUT/kubelet is missing or of another version.
set -euo pipefail

OUT="${1:?usage: build-kubelet.sh OUT [VERSION]}"
VERSION="${2:-v1.37.2}"
STAGING_VERSION="v0.${VERSION#v1.}"
export PATH="$PATH:/usr/local/go/bin"
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0

log() { echo "build-kubelet: $*" >&2; }

moddir="$(go mod download -json "k8s.io/kubernetes@$VERSION" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "copying k8s.io/kubernetes@$VERSION"
# Only what the build reads: go.mod, go.sum and the Go packages (not vendor/,
# staging/, docs, test data of other components).
for part in go.mod go.sum cmd pkg plugin third_party; do
  cp -r "$moddir/$part" "$work/"
done
chmod -R u+w "$work"
cd "$work"
edits=()
while read -r module; do
  edits+=("-dropreplace=$module" "-require=$module@$STAGING_VERSION")
done < <(go mod edit -json | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"):
        print(r["Old"]["Path"])')
log "requiring $((${#edits[@]} / 2)) staging modules at $STAGING_VERSION instead of ./staging"
go mod edit "${edits[@]}"
log "building cmd/kubelet"
mkdir -p "$OUT"
go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$VERSION" \
  -o "$OUT/kubelet.tmp" ./cmd/kubelet
mv "$OUT/kubelet.tmp" "$OUT/kubelet"
log "built $OUT/kubelet ($("$OUT/kubelet" --version))"
