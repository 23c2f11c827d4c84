// Package benchkit is the ingest benchmark behind `make bench`: one
// repeatable workload (demo commerce records padded to about 1 KB, spread
// over the partitions of one topic in the real broker), the paths it is
// measured on — a bare franz-go consume loop, a bare clickhouse-go batch
// insert, ClickHouse's Kafka table engine, and `weft run` as a child process
// (ingest rate, peak RSS, produce-to-queryable latency) — and the summary
// table that compares them. docs/benchmarks.md says how to run and read it.
//
// benchkit is a benchmark tool, not a part of weft: every statement it runs
// is in store.go, on a Server — a connection of its own from chstore.Dial,
// since what it measures beside weft (a bare clickhouse-go insert, the
// Kafka table engine) cannot go through weft's store. Values are bound,
// the Kafka engine's settings included; database names are checked with
// chstore.CheckIdentifier. Only weft's schema comes from weft's store
// (chstore.Store.Migrate).
package benchkit
