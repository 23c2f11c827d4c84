// Package dashboards generates weft's Grafana dashboards as code, with the
// grafana-foundation-sdk: commerce overview, BOPIS flow, async payments,
// queue health, consistency, the audit trail and the order drill-down,
// each linked to the others, querying weft's ClickHouse tables through the
// grafana-clickhouse-datasource plugin and weft's own metrics through
// Prometheus.
//
// The panels that follow an order's workflow (funnels, step latencies,
// convergence) are generated from the workflow definitions
// (consistency.Workflow), so a new step or workflow shows up without
// touching this package.
//
// All builds every dashboard; Provisioning writes them with Grafana's
// provisioning files; Pusher uploads them through Grafana's HTTP API. Every
// panel's SQL is expanded the way Grafana and the plugin expand it
// (internal/grafanasql) and run against a real ClickHouse filled with demo
// traffic in the package's tests.
//
// Every join and IN subquery is GLOBAL: on a ClickHouse cluster
// (docs/clickhouse-cluster.md) weft's tables are Distributed, and ClickHouse
// refuses a subquery over a Distributed table inside a distributed query
// unless it is GLOBAL (computed once, sent to the shards) — and Grafana's
// datasource connects with no session setting that would allow it. On one
// server GLOBAL changes nothing. The tests run every panel on both layouts.
package dashboards
