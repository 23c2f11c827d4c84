#!/usr/bin/env bash
# Builds the kube-apiserver binary that the chart's real API server tier
# (charts/kubetest, docs/chart-testing.md) installs weft's Helm chart into, and
# prints its path. The Go module k8s.io/kubernetes (cmd/kube-apiserver) is
# pinned as a tool in tools/kube-apiserver (a module of its own, with replace
# lines pinning every k8s.io/* staging module to its published version),
# built once from the Go module proxy and cached outside the repo; a cold
# build takes some 15 CPU-minutes (about ten minutes on two idle cores,
# longer beside other work) and 2.7 GB of Go build cache, so it runs niced
# (on every core, to keep a fresh `make test` short) and under the shared
# cold-build lock so that it
# never runs beside another heavy build.
#
#   WEFT_KUBE_APISERVER=$(scripts/kube-apiserver.sh)
#
# Env: WEFT_KUBE_APISERVER (use this binary instead), WEFT_CACHE_DIR (cache
# root; default $XDG_CACHE_HOME/weft or ~/.cache/weft).
set -euo pipefail

KUBE_VERSION=v1.37.2
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="${WEFT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weft}/kube-apiserver-$KUBE_VERSION"
BIN="$CACHE/kube-apiserver"
COLDBUILD_LOCK=/tmp/weft-coldbuild.lock
# The version the server reports (/version, which Helm checks against a
# chart's kubeVersion), stamped as Kubernetes' own build does.
LDFLAGS=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=37 -X $pkg.gitTreeState=clean"
done

if [[ -n "${WEFT_KUBE_APISERVER:-}" ]]; then
  if [[ -x "$WEFT_KUBE_APISERVER" ]]; then echo "$WEFT_KUBE_APISERVER"; exit 0; fi
  echo "WEFT_KUBE_APISERVER=$WEFT_KUBE_APISERVER is not an executable" >&2
  exit 1
fi
if [[ -x "$BIN" ]]; then echo "$BIN"; exit 0; fi

command -v go >/dev/null || { echo "go not found (needed once to build kube-apiserver $KUBE_VERSION)" >&2; exit 1; }
mkdir -p "$CACHE"
# Serialize concurrent builds of this binary; another process may have
# finished meanwhile.
exec 9>"$CACHE/.lock"
flock 9
if [[ -x "$BIN" ]]; then echo "$BIN"; exit 0; fi
echo "kube-apiserver: building k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION (tools/kube-apiserver) into $BIN; a cold build takes about ten minutes on two idle cores" >&2
tmp="$BIN.tmp.$$"
if ! (cd "$REPO_ROOT/tools/kube-apiserver" &&
  flock "$COLDBUILD_LOCK" nice -n 19 go build -ldflags="$LDFLAGS" -o "$tmp" k8s.io/kubernetes/cmd/kube-apiserver) >"$CACHE/build.log" 2>&1; then
  tail -n 40 "$CACHE/build.log" >&2
  rm -f "$tmp"
  echo "kube-apiserver: build failed (log: $CACHE/build.log)" >&2
  exit 1
fi
mv "$tmp" "$BIN"
echo "kube-apiserver: built kube-apiserver $KUBE_VERSION at $BIN" >&2
echo "$BIN"
