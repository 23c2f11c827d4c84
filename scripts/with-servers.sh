#!/usr/bin/env bash
# Starts the real servers the integration tests need — one Apache Kafka KRaft
# broker (scripts/testkafka.sh), the embedded ClickHouse (weft
# clickhouse-server) and a cluster of two more embedded ClickHouse servers,
# one shard each (docs/clickhouse-cluster.md) — all on 127.0.0.1, runs the
# given command with WEFT_TEST_KAFKA, WEFT_TEST_CLICKHOUSE and
# WEFT_TEST_CLICKHOUSE_CLUSTER (the shards' addresses; the cluster is named
# weft_test) set, and stops them afterwards, whatever the command's outcome.
# Exits with the command's status.
#
#   scripts/with-servers.sh go test ./...
#
# WEFT_TEST_SERVERS is the comma-separated list of what to start, of kafka,
# clickhouse and clickhouse-cluster (default all three): clickhouse starts
# ClickHouse alone (no Kafka, no kcat).
# WEFT_TEST_CLICKHOUSE_DATA=DIR keeps ClickHouse's data in DIR, kept after the
# run, instead of a temporary directory (make bench-scale reuses its load).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-servers.XXXXXX")
ch_pids=()

cleanup() {
  for pid in "${ch_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${ch_pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [[ -d "$work/kafka" ]]; then scripts/testkafka.sh stop "$work/kafka" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

servers=${WEFT_TEST_SERVERS:-kafka,clickhouse,clickhouse-cluster}
with_kafka=false
[[ ",$servers," == *,kafka,* ]] && with_kafka=true
with_cluster=false
[[ ",$servers," == *,clickhouse-cluster,* ]] && with_cluster=true
ch_data=${WEFT_TEST_CLICKHOUSE_DATA:-$work/clickhouse}

# kcat is the independent client of the interop test (Debian package kcat).
if $with_kafka && ! command -v kcat >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing kcat (Debian package)" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
  else
    echo "kcat is required for the interop test: install the Debian package kcat" >&2
    exit 1
  fi
fi

go build -o bin/weft ./cmd/weft

# start_clickhouse NAME DATA ARGS... starts an embedded ClickHouse whose
# output goes to $work/NAME.out. The first start fetches the engine into the
# user cache (about 170 MB); the others wait for it (a lock in the cache).
start_clickhouse() {
  local name=$1 data=$2
  shift 2
  bin/weft clickhouse-server --data-dir "$data" --http-port 0 "$@" >"$work/$name.out" 2>&1 &
  ch_pids+=($!)
}

# wait_clickhouse NAME prints the native address of the server NAME once its
# banner says it listens.
wait_clickhouse() {
  local name=$1 pid=$2 addr=""
  for _ in $(seq 1 3000); do   # up to 10 minutes: the first run downloads the engine
    addr=$(sed -n 's/^ClickHouse is listening: native \([0-9.:]*\),.*/\1/p' "$work/$name.out")
    [[ -n "$addr" ]] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "embedded ClickHouse ($name) failed to start:" >&2
      tail -n 40 "$work/$name.out" >&2
      exit 1
    fi
    sleep 0.2
  done
  if [[ -z "$addr" ]]; then
    echo "embedded ClickHouse ($name) did not start in time" >&2
    tail -n 40 "$work/$name.out" >&2
    exit 1
  fi
  echo "$addr"
}

# free_port: the cluster's shards need their ports before they start, since
# each names the other in remote_servers.
# shellcheck source=scripts/ports.sh
source scripts/ports.sh

start_clickhouse clickhouse "$ch_data" --tcp-port 0
ch_pid=${ch_pids[0]}

# Kafka starts while ClickHouse does.
kafka=""
if $with_kafka; then
  kafka=$(scripts/testkafka.sh start "$work/kafka")
fi

clickhouse=$(wait_clickhouse clickhouse "$ch_pid")

cluster=""
if $with_cluster; then
  shards=()
  for i in 1 2; do
    p=$(free_port)
    while [[ " ${shards[*]:-} " == *":$p "* ]]; do p=$(free_port); done
    shards+=("127.0.0.1:$p")
  done
  shard_flags=()
  for s in "${shards[@]}"; do shard_flags+=(--cluster-shard "$s"); done
  for i in 0 1; do
    start_clickhouse "shard$i" "$work/clickhouse-shard$i" --tcp-port "${shards[$i]##*:}" --cluster weft_test "${shard_flags[@]}"
  done
  for i in 0 1; do wait_clickhouse "shard$i" "${ch_pids[$((i + 1))]}" >/dev/null; done
  cluster=$(IFS=,; echo "${shards[*]}")
  export WEFT_TEST_CLICKHOUSE_CLUSTER="$cluster"
fi

echo "real servers: kafka ${kafka:-(not started)}, clickhouse $clickhouse (data $ch_data), cluster weft_test ${cluster:-(not started)}" >&2
export WEFT_TEST_CLICKHOUSE="$clickhouse"
if $with_kafka; then
  export WEFT_TEST_KAFKA="$kafka"
  # The same broker's SASL_SSL listener (see scripts/testkafka.sh).
  WEFT_TEST_KAFKA_SASL=$(cat "$work/kafka/sasl_bootstrap")
  export WEFT_TEST_KAFKA_SASL WEFT_TEST_KAFKA_CA="$work/kafka/ca.pem" WEFT_TEST_KAFKA_USERS="$work/kafka/users"
fi
status=0
"$@" || status=$?
exit "$status"
