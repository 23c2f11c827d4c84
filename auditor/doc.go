// Package auditor makes what weft stores tamper-evident: every stored Kafka
// record becomes a leaf of an append-only Merkle log per topic-partition
// (RFC 6962), each log's size and root are published as signed checkpoints
// (C2SP tlog-checkpoint, Ed25519 signed notes), and an order's events are
// exported as an evidence bundle an auditor verifies offline with nothing
// but the bundle and the public key.
//
// This file set is the pure core: leaf and action encodings (leaf.go,
// action.go), the commitments a leaf carries (commit.go), log state and
// proofs (log.go, partition.go, proof.go), checkpoints and keys
// (checkpoint.go, and config.go for where keys come from), and the bundle
// (bundle.go, verify.go). It does no ClickHouse or Kafka I/O: the tap
// hands it records and stores what it returns. The trees, proofs and their verification are those of
// github.com/transparency-dev/merkle; checkpoints are parsed by
// github.com/transparency-dev/formats and signed with
// golang.org/x/mod/sumdb/note. docs/audit.md describes every format byte by
// byte and the threat model.
package auditor
