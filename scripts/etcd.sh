#!/usr/bin/env bash
# Finds the etcd binary that the chart's real API server tier
# (charts/kubetest, docs/chart-testing.md) stores kube-apiserver's objects in, and
# prints its path. etcd comes from Debian's etcd-server package (/usr/bin/etcd);
# as root, a missing one is installed with apt-get, saying so.
#
#   WEFT_ETCD=$(scripts/etcd.sh)
#
# Env: WEFT_ETCD (use this binary instead).
set -euo pipefail

if [[ -n "${WEFT_ETCD:-}" ]]; then
  if [[ -x "$WEFT_ETCD" ]]; then echo "$WEFT_ETCD"; exit 0; fi
  echo "WEFT_ETCD=$WEFT_ETCD is not an executable" >&2
  exit 1
fi
find_etcd() {
  local c
  for c in "$(command -v etcd 2>/dev/null || true)" /usr/bin/etcd /usr/local/bin/etcd; do
    if [[ -n "$c" && -x "$c" ]]; then echo "$c"; return 0; fi
  done
  return 1
}
if find_etcd; then exit 0; fi

if [[ $(id -u) -ne 0 ]]; then
  echo "etcd: not found; install Debian's etcd-server package (apt-get install etcd-server) or set WEFT_ETCD" >&2
  exit 1
fi
echo "etcd: not found; installing Debian's etcd-server package (apt-get update && apt-get install -y etcd-server)" >&2
if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server; } >/tmp/weft-etcd-install.log 2>&1; then
  tail -n 20 /tmp/weft-etcd-install.log >&2
  echo "etcd: apt-get install etcd-server failed (log: /tmp/weft-etcd-install.log)" >&2
  exit 1
fi
if find_etcd; then exit 0; fi
echo "etcd: etcd-server is installed but no etcd binary was found" >&2
exit 1
