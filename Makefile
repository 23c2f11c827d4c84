# weft — the two commands first: `make run` and `make test`.
GO      ?= go
BIN     := bin/weft
DATA    ?= .data

.PHONY: all build run test test-short vet bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/weft

## run: embedded ClickHouse + embedded Kafka (kfake) + demo traffic + weft, until Ctrl-C.
run: build
	$(BIN) dev --data-dir $(DATA)

## test: vet, then every test against a real Apache Kafka broker and the embedded ClickHouse.
test: vet
	scripts/with-servers.sh $(GO) test -count=1 -timeout 15m ./...

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

clean:
	rm -rf bin
