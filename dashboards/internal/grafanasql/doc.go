// Package grafanasql expands a ClickHouse panel query the way Grafana and the
// grafana-clickhouse-datasource plugin do before the SQL reaches ClickHouse,
// so tests can run every generated panel's SQL against a real server.
//
// The pipeline has three stages, each a port of the code that runs in
// Grafana:
//
//  1. ApplyConditionalAll — the plugin's frontend
//     (src/data/CHDatasource.ts, applyConditionalAll and getMacroArgs):
//     $__conditionalAll(condition, $var) becomes 1=1 when $var is "All"
//     (or empty) and the condition otherwise.
//  2. ReplaceVariables — Grafana's template service (templateSrv.replace)
//     with the plugin's format function: $var, ${var}, ${var:format} and
//     [[var]]; a multi-value without an explicit format is rendered
//     'a','b' (the plugin's CHDatasource.format), a single value raw.
//  3. Interpolate — the plugin's backend: sqlutil.Interpolate of
//     grafana-plugin-sdk-go (the argument scanner getMacroMatches included,
//     quirks and all) with the plugin's macros (pkg/macros/macros.go) and
//     sqlutil's defaults for the names the plugin does not define.
//
// It is test support, imported only by the dashboards' tests. The quoting
// in formatValue (Grafana's sqlstring and singlequote formats) imitates
// Grafana's, quirks and all, so it stays here rather than share the
// dashboards' own quoting (dashboards.sqlString, the one function that
// quotes weft's literals into the SQL Grafana runs).
package grafanasql
