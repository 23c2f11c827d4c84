package main

import (
	"fmt"
	"os"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/collector"
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
