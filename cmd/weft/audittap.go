package main

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/chstore"
)

// tapAudit is the tap's audit hook built from the audit block: nil when
// the trail is off; an error when a configured key cannot be read (never
// a silent fall back to unsigned) or the checkpoint directory cannot be
// made.
func tapAudit(c auditor.Config) (*collector.Audit, error) {
	if !c.Enabled {
		return nil, nil
	}
	signer, err := c.LoadSigner()
	if err != nil {
		return nil, err
	}
	source, err := c.LoadSourceKey()
	if err != nil {
		return nil, err
	}
	if c.Checkpoint.Dir != "" {
		if err := os.MkdirAll(c.Checkpoint.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("audit.checkpoint.dir: %w", err)
		}
	}
	return &collector.Audit{ClusterID: c.ClusterID, Signer: signer, SourceKey: source,
		EveryLeaves: c.Checkpoint.EveryLeaves, Every: c.Checkpoint.Every, Dir: c.Checkpoint.Dir}, nil
}

// auditWatch is weft run's scheduled verification (audit.verify), with
// the verifier key of the signer it checkpoints with. Each run is an
// operator action of "weft", from "run <host>".
func auditWatch(cfg Config, audit *collector.Audit, store *chstore.Store, actions *collector.ActionLog,
	reg prometheus.Registerer, log zerolog.Logger) *collector.AuditWatch {
	opts := collector.AuditVerify{ClusterID: cfg.Audit.ClusterID, CheckpointDir: cfg.Audit.Checkpoint.Dir}
	if audit.Signer != nil {
		// A key that signs checks its own signatures: cannot fail.
		opts.Verifier, _ = auditor.NewVerifier(audit.Signer.VerifierKey())
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return collector.NewAuditWatch(store, opts, cfg.Audit.Verify.Every, cfg.Audit.Verify.Window, collector.AuditWatchSettings{
		Logger: log, Registerer: reg, Actions: actions, Actor: "weft", Origin: "run " + host})
}
