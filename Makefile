# weft — the two commands first: `make run` and `make test`.
GO      ?= go
BIN     := bin/weft
DATA    ?= .data

.PHONY: all build run test test-short vet bench bench-scale bench-search clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/weft

## run: embedded ClickHouse + embedded Kafka (kfake) + demo traffic + weft, until Ctrl-C.
run: build
	$(BIN) dev --data-dir $(DATA)

## test: vet, then every test against a real Apache Kafka broker and the embedded ClickHouse, then
## the store's, engine's, dashboards' and CLI's tests again on a two-shard ClickHouse cluster,
## then the alert rules checked by Prometheus's parser and evaluated by its engine on a detector's
## metrics (alerts/rulecheck, a module of its own, on the same servers), then the web console
## driven in Debian's chromium (console/browsertest, a module of its own; scripts/chromium.sh
## finds chromium or installs it, as root, with apt-get; without one that test fails).
## Screenshots: .artifacts/console. The tracing test exports to a real Jaeger v2: scripts/jaeger.sh
## builds it once from the Go module proxy (tools/jaeger, about ten minutes niced on two cores) into
## ~/.cache/weft/jaeger-v1.75.0, saying so; without it that test fails. The chart's API-server
## tier (charts/kubetest) needs kube-apiserver v1.37.2, built once by scripts/kube-apiserver.sh
## from the Go module proxy (tools/kube-apiserver, 10-17 min niced on two cores) into
## ~/.cache/weft/kube-apiserver-v1.37.2, and etcd from Debian's etcd-server (scripts/etcd.sh).
test: vet
	export WEFT_CHROMIUM=$$(scripts/chromium.sh || true); \
	export WEFT_JAEGER=$$(scripts/jaeger.sh || true); \
	export WEFT_KUBE_APISERVER=$$(scripts/kube-apiserver.sh || true); \
	export WEFT_ETCD=$$(scripts/etcd.sh || true); \
	scripts/with-servers.sh sh -c '$(GO) test -count=1 -timeout 15m ./... && $(CLUSTER_PASS) && (cd alerts/rulecheck && $(GO) vet ./... && $(GO) test -count=1 ./...) && (cd charts/test && echo "charts/test: the first build compiles the Helm v4 SDK (about 8 min cold)" && $(GO) vet ./... && $(GO) test -count=1 ./...) && (cd charts/kubetest && $(GO) vet ./... && $(GO) test -count=1 ./...) && cd console/browsertest && $(GO) vet ./... && $(GO) test -count=1 -v ./...'

## The second pass of `make test`: the tests of the store, the consistency engine, the dashboards'
## SQL, the end-to-end CLI answers and the audit trail's tamper and erasure checks again, with every test database on the two-shard cluster of
## embedded ClickHouse servers that scripts/with-servers.sh starts (docs/clickhouse-cluster.md).
CLUSTER_PASS = echo "the same tests on the ClickHouse cluster layout" && WEFT_TEST_LAYOUT=cluster $(GO) test -count=1 -timeout 10m ./internal/chstore/ ./consistency/ ./dashboards/ && WEFT_TEST_LAYOUT=cluster $(GO) test -count=1 -timeout 10m -run "^TestEndToEnd|^TestMigrate" ./cmd/weft/ && WEFT_TEST_LAYOUT=cluster $(GO) test -count=1 -timeout 10m -run "^TestVerifyAuditTamper|^TestEraseOrder" ./collector/

## test-short: the fast unit tests alone, no servers.
test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

## bench: per-record decode cost, then the ingest benchmark (docs/benchmarks.md) on fresh
## real servers: 1M ~1 KB records over 12 partitions through a bare consume, a bare insert,
## ClickHouse's Kafka engine and `weft run`; ends with a summary table. WEFT_BENCH_* knobs.
bench:
	$(GO) test -run '^$$' -bench 'Decode' -count 3 ./collector/
	scripts/with-servers.sh $(GO) test -run '^$$' -bench '^BenchmarkIngest$$' -benchtime 1x -count 1 -timeout 30m ./collector/

## bench-scale: issue 4's speed targets (docs/scale.md) over WEFT_SCALE_ORDERS orders (default
## 10M, ~10 events each) generated into the embedded ClickHouse, whose data stays in
## WEFT_SCALE_DATA so the next run reuses the load; or against a running server at
## WEFT_TEST_CLICKHOUSE=host:port. WEFT_SCALE_* knobs.
WEFT_SCALE_DATA ?= $(DATA)/scale-clickhouse
SCALE_BENCH = $(GO) test -run '^$$' -bench '^BenchmarkScale$$' -benchtime 1x -count 1 -timeout 0 ./consistency/
bench-scale:
ifdef WEFT_TEST_CLICKHOUSE
	$(SCALE_BENCH)
else
	WEFT_TEST_SERVERS=clickhouse WEFT_TEST_CLICKHOUSE_DATA=$(abspath $(WEFT_SCALE_DATA)) scripts/with-servers.sh $(SCALE_BENCH)
endif

## bench-search: `weft events` lookup latency by filter kind (docs/search.md) over the same
## generated history as bench-scale (loaded, or reused from WEFT_SCALE_DATA), or against a
## running server at WEFT_TEST_CLICKHOUSE=host:port. WEFT_SCALE_ORDERS, WEFT_SEARCH_RUNS.
SEARCH_BENCH = $(GO) test -run '^$$' -bench '^BenchmarkSearch$$' -benchtime 1x -count 1 -timeout 0 ./internal/chstore/
bench-search:
ifdef WEFT_TEST_CLICKHOUSE
	$(SEARCH_BENCH)
else
	WEFT_TEST_SERVERS=clickhouse WEFT_TEST_CLICKHOUSE_DATA=$(abspath $(WEFT_SCALE_DATA)) scripts/with-servers.sh $(SEARCH_BENCH)
endif

clean:
	rm -rf bin
