// Package alerts generates weft's Prometheus alert rules as code, from the
// workflows in the configuration: stuck orders by workflow, step and
// reason, the oldest stuck order against its workflow's SLAs, open findings
// by kind, and the health of weft itself (the tap consuming, ClickHouse
// inserts, the detector, queue-health sampling). Every rule carries a
// severity, a summary, a description written from its labels and a
// runbook_url into docs/runbook.md.
//
// Like dashboards/, it is a pillar without a running part: Rules builds the
// groups, RulesFile and PrometheusRule render them (a Prometheus rules file,
// and the prometheus-operator manifest for the chart), Write puts both in a
// directory for `weft alerts generate`. The rules' expressions are checked
// with Prometheus's own rule parser in the test module alerts/rulecheck,
// which keeps the prometheus/prometheus dependency out of weft's go.mod.
package alerts
