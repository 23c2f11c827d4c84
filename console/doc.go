// Package console is weft's web console: server-rendered pages for the
// on-call engineer — stuck orders, an order's standing, findings and
// causal chain, findings by kind, queue health, the audit trail's
// checkpoints — with its assets embedded, a session cookie holding the
// credential a person logged in with, and CSRF-checked acknowledgements
// (docs/console.md). It reads through the functions cmd/weft gives it
// (Data), the same that answer the CLI and the JSON API.
package console
