// Package notify sends webhook messages (Slack-compatible or generic JSON)
// when the detector opens or resolves a finding, where no Prometheus and
// Alertmanager are around: one message per open and per resolve of a
// finding, deduplicated, at most one message per min_interval per webhook
// (what arrives meanwhile goes in the next one), retried with backoff on 5xx,
// 429 and network errors, carrying the finding's evidence and links to
// weft's API.
//
// The Notifier is a component (docs/architecture.md); the detector feeds it
// through consistency.Settings.OnFinding, which calls Notify.
package notify
