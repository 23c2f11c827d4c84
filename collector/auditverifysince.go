package collector

import (
	"context"
	"fmt"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
)

// `weft audit verify --since` (docs/audit.md, "Verifying what ClickHouse
// holds"): a log is verified from the newest state the tap stored with a
// leaf before the time given (audit_leaves.state, on each partition's last
// leaf of each insert), not from leaf 0. The state is the compact range of
// the log up to that leaf: the leaves after it are appended to it, and the
// tree must reach the root of every later checkpoint, so a state that was
// forged, or leaves after it that were, show as with a whole run.

// since loads where a --since run of the log starts. It returns nil when
// no leaf stored before v.Since carries a state (the whole log is
// verified), and reports a broken log when the state does not parse or
// does not cover the leaves up to its own.
func (lv *logVerify) since(ctx context.Context) (*auditor.PartitionLog, error) {
	st, ok, err := lv.store.AuditStateBefore(ctx, lv.lr.Topic, lv.lr.Partition, lv.v.Since)
	if err != nil || !ok {
		return nil, err
	}
	row := chstore.AuditLeafRow{LeafIndex: st.LeafIndex, Offset: -1}
	p, err := auditor.ParsePartitionState(st.State)
	if err != nil {
		return nil, lv.broken(row, fmt.Sprintf("the log state stored with leaf %d does not parse (%v), so --since cannot start there", st.LeafIndex, err))
	}
	if p.Log().Size() != st.LeafIndex+1 {
		return nil, lv.broken(row, fmt.Sprintf("the log state stored with leaf %d covers %d leaves, not %d", st.LeafIndex, p.Log().Size(), st.LeafIndex+1))
	}
	lv.lr.From = &AuditLogFrom{Leaf: p.Log().Size(), Offset: p.Next(), StoredAt: st.StoredAt.UTC()}
	return p, nil
}

// checkState compares the state stored with leaf r (where the tap resumes,
// and --since starts) with the log rebuilt up to it.
func (lv *logVerify) checkState(r chstore.AuditLeafRow, tree *auditor.Log, next int64) {
	p, err := auditor.ParsePartitionState(r.State)
	if err == nil && p.Log().Equal(tree) && p.Next() == next {
		return
	}
	idx := r.LeafIndex
	detail := "the log state stored with this leaf is not the log's up to it: a tap resuming from it, or verify --since starting there, would fork the log"
	if lv.lr.From != nil {
		detail = fmt.Sprintf("the log state stored with this leaf is not the log rebuilt from the state stored with leaf %d, where --since started: one of them is not the log's", lv.lr.From.Leaf-1)
	}
	lv.find(AuditFinding{Kind: FindingBrokenLog, Offset: r.Offset, LeafIndex: &idx, OrderID: r.OrderID, Detail: detail})
}

// fromState is said of a checkpoint of size a --since run's tree does not
// reach: the tree was rebuilt from a stored state, which is then as suspect
// as the leaves after it.
func (lv *logVerify) fromState(size uint64) string {
	switch {
	case lv.lr.From == nil:
		return ""
	case size == lv.lr.From.Leaf:
		return fmt.Sprintf(" (the state stored with leaf %d, where --since started, is not the log's)", lv.lr.From.Leaf-1)
	}
	return fmt.Sprintf(" (rebuilt from the state stored with leaf %d: that state or a leaf after it is not the log's)", lv.lr.From.Leaf-1)
}
