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

## bench: per-record decode cost, then end-to-end ingest against the real servers.
bench:
	$(GO) test -run '^$$' -bench 'Decode' -count 5 ./collector/
	scripts/with-servers.sh $(GO) test -run '^$$' -bench 'IngestEndToEnd' -benchtime 3x -count 1 ./collector/

clean:
	rm -rf bin
