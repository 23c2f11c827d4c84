// Package rulecheck checks weft's generated alert rules with Prometheus's
// own rule parser (model/rulefmt, promql/parser) and evaluates the
// stuck-order rules with its PromQL engine. It is a module of its own so the
// prometheus/prometheus dependency stays out of weft's go.mod; `make test`
// runs it.
package rulecheck
