#!/usr/bin/env bash
# Builds the Jaeger v2 binary that the tracing integration test exports to
# (docs/tracing.md) and prints its path. The Go module
# github.com/jaegertracing/jaeger/cmd/jaeger is pinned as a tool in
# tools/jaeger (a module of its own: Jaeger's dependencies conflict with
# weft's pdata), built once from the Go module proxy and cached outside the
# repo; a cold build takes roughly ten minutes on two cores, so it runs
# niced (every core, so that a fresh `make test` stays short; nice keeps the
# machine usable).
#
#   WEFT_JAEGER=$(scripts/jaeger.sh)
#
# Env: WEFT_JAEGER (use this binary instead), WEFT_CACHE_DIR (cache root;
# default $XDG_CACHE_HOME/weft or ~/.cache/weft).
set -euo pipefail

JAEGER_VERSION=v1.75.0
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="${WEFT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weft}/jaeger-$JAEGER_VERSION"
BIN="$CACHE/jaeger"

if [[ -n "${WEFT_JAEGER:-}" ]]; then
  if [[ -x "$WEFT_JAEGER" ]]; then echo "$WEFT_JAEGER"; exit 0; fi
  echo "WEFT_JAEGER=$WEFT_JAEGER is not an executable" >&2
  exit 1
fi
if [[ -x "$BIN" ]]; then echo "$BIN"; exit 0; fi

command -v go >/dev/null || { echo "go not found (needed once to build Jaeger $JAEGER_VERSION)" >&2; exit 1; }
mkdir -p "$CACHE"
# Serialize concurrent builds; another process may have finished meanwhile.
exec 9>"$CACHE/.lock"
flock 9
if [[ -x "$BIN" ]]; then echo "$BIN"; exit 0; fi
echo "jaeger: building github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION (tools/jaeger) into $BIN; a cold build takes about ten minutes" >&2
tmp="$BIN.tmp.$$"
if ! (cd "$REPO_ROOT/tools/jaeger" && nice -n 19 go build -o "$tmp" github.com/jaegertracing/jaeger/cmd/jaeger) >"$CACHE/build.log" 2>&1; then
  tail -n 40 "$CACHE/build.log" >&2
  rm -f "$tmp"
  echo "jaeger: build failed (log: $CACHE/build.log)" >&2
  exit 1
fi
mv "$tmp" "$BIN"
echo "jaeger: built Jaeger $JAEGER_VERSION at $BIN" >&2
echo "$BIN"
