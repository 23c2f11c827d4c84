// Package replay produces records again — an order's, a finding's, a
// dead-letter topic's — from their original bytes read back from Kafka,
// as jobs that are off by default, allow-listed, rate-limited, resumable
// exactly once and audited (docs/replay.md). The tap stays read-only:
// replay has a Kafka client and credentials of its own.
package replay
