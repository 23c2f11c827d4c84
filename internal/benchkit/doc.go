// Package benchkit is the ingest benchmark behind `make bench`: one
// repeatable workload (demo commerce records padded to about 1 KB, spread
// over the partitions of one topic in the real broker), the paths it is
// measured on — a bare franz-go consume loop, a bare clickhouse-go batch
// insert, ClickHouse's Kafka table engine, and `weft run` as a child process
// (ingest rate, peak RSS, produce-to-queryable latency) — and the summary
// table that compares them. docs/benchmarks.md says how to run and read it.
package benchkit
