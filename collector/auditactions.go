package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
)

// ActionLog appends operator actions — ack, export, erase, verify, and
// replay and redrive when they exist — to the cluster's actions log
// (docs/audit.md, "Operator actions"), and checkpoints it after each one:
// an action is rare, and a checkpoint at once is what makes removing it
// later detectable.
//
// Several processes append to one log (the server acknowledging through
// the API, a CLI erasing): each append reads the newest stored state and
// inserts its leaf at the next index with the index's deduplication token
// (chstore.ActionToken). ClickHouse keeps the first insert of a token and
// drops the others, so of two writers racing for an index one wins; the
// other reads back a leaf that is not its own and tries the next index.
type ActionLog struct {
	cfg   Audit
	store *chstore.Store
	now   func() time.Time
}

// NewActionLog returns the actions log of the audit configuration cfg in
// store.
func NewActionLog(cfg Audit, store *chstore.Store) *ActionLog {
	return &ActionLog{cfg: cfg, store: store, now: time.Now}
}

// maxActionAttempts bounds the appends lost to other writers before
// Record gives up: each loss means another action was stored.
const maxActionAttempts = 50

// Record appends a (its time set to now when zero, its order tag from
// orderID) and checkpoints the log. It returns the action's leaf index.
func (l *ActionLog) Record(ctx context.Context, a auditor.Action, orderID string) (uint64, error) {
	if a.TimeMs == 0 {
		a.TimeMs = l.now().UnixMilli()
	}
	if orderID != "" {
		a.OrderTag = l.cfg.SourceKey.OrderTag(orderID)
	}
	leaf, err := a.MarshalBinary()
	if err != nil {
		return 0, err
	}
	hash := auditor.LeafHash(leaf)
	row := chstore.ActionRow{Time: time.UnixMilli(a.TimeMs).UTC(), Actor: a.Actor, Origin: a.Origin, Verb: a.Verb,
		Resource: a.Resource, Outcome: a.Outcome.String(), Detail: a.Detail, OrderID: orderID, Leaf: leaf, LeafHash: hash}
	for _, t := range a.Targets {
		row.Targets = append(row.Targets, chstore.ActionTarget{Topic: t.Topic, Partition: t.Partition, Offset: t.Offset})
	}
	for range maxActionAttempts {
		log, err := l.head(ctx)
		if err != nil {
			return 0, err
		}
		row.LeafIndex = log.Size()
		if _, err := log.Append(hash); err != nil {
			return 0, fmt.Errorf("actions log: %w", err)
		}
		if row.State, err = log.MarshalBinary(); err != nil {
			return 0, fmt.Errorf("actions log: %w", err)
		}
		row.StoredAt = l.now().UTC()
		if err := l.store.InsertAction(ctx, row); err != nil {
			return 0, err
		}
		stored, err := l.store.ActionLeavesAt(ctx, row.LeafIndex)
		if err != nil {
			return 0, err
		}
		switch {
		case len(stored) == 1 && bytes.Equal(stored[0], leaf):
			// The leaf is in: its checkpoint is finished even when the
			// caller stops now. Cut off between the sink and ClickHouse,
			// it would be in the sink alone, which verify reports.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkpointPass)
			defer cancel()
			return row.LeafIndex, l.checkpoint(cctx)
		case len(stored) > 1:
			return 0, fmt.Errorf("actions log: %d different leaves at index %d: the log was written outside weft; run weft audit verify", len(stored), row.LeafIndex)
		}
		// Another writer took the index: append after its leaf.
	}
	return 0, fmt.Errorf("actions log: lost the race for an index %d times in a row", maxActionAttempts)
}

// head returns the log as stored: rebuilt from the state stored with its
// newest leaf.
func (l *ActionLog) head(ctx context.Context) (*auditor.Log, error) {
	size, state, err := l.store.LatestActionState(ctx)
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return auditor.NewLog(), nil
	}
	log, err := auditor.ParseLogState(state)
	if err != nil {
		return nil, fmt.Errorf("actions log: the state stored with leaf %d: %w", size-1, err)
	}
	if log.Size() != size {
		return nil, fmt.Errorf("actions log: the state stored with leaf %d is of size %d", size-1, log.Size())
	}
	return log, nil
}

// checkpoint signs and publishes the log as stored now. The time is taken
// before the read, so checkpoints made by racing writers still grow with
// their creation time (what verify checks): a later read sees at least
// the leaves an earlier one saw.
func (l *ActionLog) checkpoint(ctx context.Context) error {
	at := l.now().UTC()
	log, err := l.head(ctx)
	if err != nil {
		return err
	}
	if err := publishCheckpoint(ctx, l.cfg, l.store, log.Checkpoint(auditor.ActionsOrigin(l.cfg.ClusterID)), at); err != nil {
		return fmt.Errorf("the action is logged; its checkpoint is not: %w", err)
	}
	return nil
}

// errNoActionLog is returned by actions a caller records without an audit
// trail configured.
var errNoActionLog = errors.New("the audit trail is off (audit.enabled): the action is not logged")
