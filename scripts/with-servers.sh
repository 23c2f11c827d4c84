#!/usr/bin/env bash
# Starts the real servers the integration tests need — one Apache Kafka KRaft
# broker (scripts/testkafka.sh) and the embedded ClickHouse (weft
# clickhouse-server) — both on 127.0.0.1, runs the given command with
# WEFT_TEST_KAFKA and WEFT_TEST_CLICKHOUSE set, and stops both afterwards,
# whatever the command's outcome. Exits with the command's status.
#
#   scripts/with-servers.sh go test ./...
#
# WEFT_TEST_SERVERS=clickhouse starts ClickHouse alone (no Kafka, no kcat).
# WEFT_TEST_CLICKHOUSE_DATA=DIR keeps ClickHouse's data in DIR, kept after the
# run, instead of a temporary directory (make bench-scale reuses its load).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-servers.XXXXXX")
ch_pid=""

cleanup() {
  if [[ -n "$ch_pid" ]] && kill -0 "$ch_pid" 2>/dev/null; then
    kill -TERM "$ch_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$ch_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$ch_pid" 2>/dev/null || true
  fi
  if [[ -d "$work/kafka" ]]; then scripts/testkafka.sh stop "$work/kafka" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

servers=${WEFT_TEST_SERVERS:-kafka,clickhouse}
with_kafka=false
[[ ",$servers," == *,kafka,* ]] && with_kafka=true
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

# ClickHouse: fetched into the user cache on first use (about 170 MB), then
# started on free ports. Its banner line carries the address.
bin/weft clickhouse-server --data-dir "$ch_data" --tcp-port 0 --http-port 0 >"$work/clickhouse.out" 2>&1 &
ch_pid=$!

# Kafka starts while ClickHouse does.
kafka=""
if $with_kafka; then
  kafka=$(scripts/testkafka.sh start "$work/kafka")
fi

clickhouse=""
for _ in $(seq 1 3000); do   # up to 10 minutes: the first run downloads the engine
  clickhouse=$(sed -n 's/^ClickHouse is listening: native \([0-9.:]*\),.*/\1/p' "$work/clickhouse.out")
  [[ -n "$clickhouse" ]] && break
  if ! kill -0 "$ch_pid" 2>/dev/null; then
    echo "embedded ClickHouse failed to start:" >&2
    tail -n 40 "$work/clickhouse.out" >&2
    exit 1
  fi
  sleep 0.2
done
if [[ -z "$clickhouse" ]]; then
  echo "embedded ClickHouse did not start in time" >&2
  tail -n 40 "$work/clickhouse.out" >&2
  exit 1
fi

echo "real servers: kafka ${kafka:-(not started)}, clickhouse $clickhouse (data $ch_data)" >&2
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
