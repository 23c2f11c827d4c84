package collector

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
)

// FindingErasedUnlogged is a record whose salt is gone (so its row can no
// longer be checked) without a successful erase action naming it.
const FindingErasedUnlogged = "erased-without-action"

// FindingErasedRestored is an erased record whose row holds a payload,
// key or headers again.
const FindingErasedRestored = "erased-row-restored"

// verifyActions checks the operator-actions log (docs/audit.md, "Operator
// actions") like a partition's: leaf indices dense from 0, every leaf
// hashing to its leaf_hash and parsing as an action, the tree's root at
// every checkpoint's size, and every row's columns equal to its leaf's
// fields (the columns are what people query; only the leaf is signed). It
// returns the log's report and the records the successful erasures name,
// with the erasing action's index. An empty log with no checkpoints is no
// report.
func verifyActions(ctx context.Context, store *chstore.Store, v AuditVerify, rep *AuditVerifyReport) (*AuditLogReport, map[auditor.Position]uint64, error) {
	// Its checkpoints are read before its actions, and an action is stored
	// before its checkpoint: none can be past the actions read (no bound).
	lv := logVerify{v: v, store: store, rep: rep, lr: AuditLogReport{Partition: -1, Origin: auditor.ActionsOrigin(v.ClusterID)},
		bound: math.MaxUint64}
	checks, err := lv.checkpoints(ctx)
	if err != nil {
		return nil, nil, err
	}
	erased := map[auditor.Position]uint64{}
	tree := auditor.NewLog()
	var prev *chstore.ActionRow
	broken := false
	err = store.ActionRows(ctx, "", func(r chstore.ActionRow) error {
		if broken {
			return nil
		}
		idx := r.LeafIndex
		fail := func(kind, format string, a ...any) {
			lv.find(AuditFinding{Kind: kind, Offset: -1, LeafIndex: &idx, OrderID: r.OrderID, Detail: fmt.Sprintf(format, a...)})
		}
		if prev != nil && r.LeafIndex == prev.LeafIndex {
			if !bytes.Equal(r.Leaf, prev.Leaf) {
				fail(FindingBrokenLog, "two different actions stored at one index")
			}
			return nil
		}
		if r.LeafIndex != tree.Size() {
			fail(FindingBrokenLog, "action index %d where %d was due: actions missing or out of order; the rest of the log is not checked", r.LeafIndex, tree.Size())
			broken = true
			return nil
		}
		a, err := auditor.ParseAction(r.Leaf)
		if err != nil || auditor.LeafHash(r.Leaf) != r.LeafHash {
			fail(FindingBrokenLog, "the leaf does not parse as an action or does not hash to its leaf_hash; the rest of the log is not checked")
			broken = true
			return nil
		}
		if _, err := tree.Append(r.LeafHash); err != nil {
			return fmt.Errorf("rebuild %s: %w", lv.lr.Origin, err)
		}
		lv.lr.Leaves++
		for len(checks) > 0 && checks[0].size <= tree.Size() {
			c := checks[0]
			checks = checks[1:]
			if c.size == tree.Size() && c.root != tree.Root() {
				lv.ckptFinding(FindingCheckpoint, c.size, "the %s checkpoint's root is not the root of the log's first %d actions", c.from, c.size)
			}
		}
		if col := actionColumnChanged(r, a); col != "" {
			fail(FindingChanged, "the row's %s is not its leaf's (%s by %s)", col, a.Verb, a.Actor)
		}
		if a.Verb == "erase" && a.Outcome == auditor.OutcomeSuccess {
			for _, t := range a.Targets {
				erased[t] = r.LeafIndex
			}
		}
		rr := r
		prev = &rr
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if !broken {
		for _, c := range checks {
			lv.ckptFinding(FindingCheckpoint, c.size, "the %s checkpoint covers %d actions, the log has %d: actions removed", c.from, c.size, tree.Size())
		}
	}
	if lv.lr.Leaves == 0 && lv.lr.Checkpoints == 0 {
		return nil, erased, nil
	}
	return &lv.lr, erased, nil
}

// actionColumnChanged names the first column of r that is not a's field,
// or "".
func actionColumnChanged(r chstore.ActionRow, a auditor.Action) string {
	targets := make([]auditor.Position, len(r.Targets))
	for i, t := range r.Targets {
		targets[i] = auditor.Position{Topic: t.Topic, Partition: t.Partition, Offset: t.Offset}
	}
	slices.SortFunc(targets, auditor.ComparePositions)
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"time", r.Time.UnixMilli() == a.TimeMs},
		{"actor", r.Actor == a.Actor},
		{"origin", r.Origin == a.Origin},
		{"verb", r.Verb == a.Verb},
		{"resource", r.Resource == a.Resource},
		{"outcome", r.Outcome == a.Outcome.String()},
		{"detail", r.Detail == a.Detail},
		{"targets", slices.Equal(targets, a.Targets)},
	} {
		if !c.ok {
			return c.name
		}
	}
	return ""
}

// restoredCopy returns a copy of an erased record's row that holds
// personal data again: a payload, a key or headers.
func restoredCopy(copies []storedRow) (storedRow, bool) {
	for _, c := range copies {
		sr, err := auditor.ParseStoredRecord(c.row)
		if err != nil || len(sr.Value) > 0 || len(sr.Key) > 0 || len(sr.Headers) > 0 {
			return c, true
		}
	}
	return storedRow{}, false
}
