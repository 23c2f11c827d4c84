package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
)

// `weft audit verify` (docs/audit.md, "Verifying what ClickHouse holds"):
// each topic-partition's log is rebuilt from audit_leaves and checked
// against its checkpoints, and every stored row against its leaf. It
// streams: per log it holds the tree's compact range, the log's
// checkpoints, the copies of one record's row and a bounded list of
// changed rows (to tell a reordering); never a table.

// Finding kinds.
const (
	FindingChanged     = "changed"    // a row's commitment differs from its leaf's
	FindingMissing     = "missing"    // a record leaf with no row
	FindingExtra       = "extra"      // a row at an offset the log has no record leaf for
	FindingDuplicated  = "duplicated" // a second, different row for one record
	FindingReordered   = "reordered"  // a row stored at one offset is the record logged at another
	FindingBrokenLog   = "broken-log" // leaves not dense, unparsable, or offsets not contiguous
	FindingCheckpoint  = "rewritten-checkpoint"
	FindingMissingCkpt = "missing-checkpoint"
)

// AuditFinding is one problem verify found.
type AuditFinding struct {
	Kind      string `json:"kind"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Offset is the record's offset, -1 for a checkpoint finding.
	Offset    int64   `json:"offset"`
	LeafIndex *uint64 `json:"leaf_index,omitempty"`
	OrderID   string  `json:"order_id,omitempty"`
	// Size is a checkpoint finding's tree size.
	Size   uint64 `json:"size,omitempty"`
	Detail string `json:"detail"`
}

func (f AuditFinding) String() string {
	where := fmt.Sprintf("%s/%d", f.Topic, f.Partition)
	if f.Offset >= 0 {
		where += "@" + strconv.FormatInt(f.Offset, 10)
	}
	if f.Size > 0 {
		where += fmt.Sprintf(" size %d", f.Size)
	}
	if f.OrderID != "" {
		where += " order " + f.OrderID
	}
	return fmt.Sprintf("%s %s: %s", f.Kind, where, f.Detail)
}

// AuditLogReport is what verify saw of one log.
type AuditLogReport struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Origin    string `json:"origin"`
	Leaves    uint64 `json:"leaves"`
	Records   uint64 `json:"records"`
	Gaps      uint64 `json:"gaps"`
	Rows      uint64 `json:"rows"`
	// Checkpoints counts the checkpoints checked (ClickHouse and sink).
	Checkpoints int `json:"checkpoints"`
	// Checkpointed is the latest checkpoint's size; the leaves after it
	// are in the log but no checkpoint covers them yet.
	Checkpointed uint64 `json:"checkpointed"`
	// Before counts rows stored before the log's first leaf (the log
	// starts at the first record weft stored with the trail on); After
	// rows past its last leaf (a running tap's batch whose leaves are not
	// stored yet). Neither is covered by the log.
	Before uint64 `json:"rows_before_log"`
	After  uint64 `json:"rows_after_log"`
	// Erased counts record leaves whose salt is gone (not checked yet).
	Erased uint64 `json:"erased"`
}

// AuditVerifyReport is the answer of `weft audit verify`.
type AuditVerifyReport struct {
	// Authenticated: every checkpoint's signature was checked with a key.
	Authenticated bool             `json:"authenticated"`
	VerifierKey   string           `json:"verifier_key,omitempty"`
	Logs          []AuditLogReport `json:"logs"`
	Findings      []AuditFinding   `json:"findings"`
}

// AuditVerify says what to verify and how.
type AuditVerify struct {
	ClusterID string
	// Topic limits verify to one topic; empty is every log.
	Topic string
	// Verifier checks checkpoint signatures; nil parses them unchecked.
	Verifier *auditor.Verifier
	// CheckpointDir is the checkpoint sink (audit.checkpoint.dir): every
	// checkpoint there must be in ClickHouse and match the log.
	CheckpointDir string
	// Progress, when set, is called with the leaves verified so far.
	Progress func(leaves uint64)
}

// VerifyAudit verifies every log (of v.Topic) in store. An error means it
// could not verify; findings mean it did and something does not hold.
func VerifyAudit(ctx context.Context, store *chstore.Store, v AuditVerify) (AuditVerifyReport, error) {
	rep := AuditVerifyReport{Authenticated: v.Verifier != nil, Findings: []AuditFinding{}}
	if v.Verifier != nil {
		rep.VerifierKey = v.Verifier.Key()
	}
	if err := auditor.ValidClusterID(v.ClusterID); err != nil {
		return rep, fmt.Errorf("audit.cluster_id: %w", err)
	}
	logs, err := store.AuditLogs(ctx)
	if err != nil {
		return rep, err
	}
	var done uint64
	for _, l := range logs {
		if v.Topic != "" && l.Topic != v.Topic {
			continue
		}
		lv := logVerify{v: v, store: store, rep: &rep, lr: AuditLogReport{Topic: l.Topic, Partition: l.Partition,
			Origin: auditor.LogOrigin(v.ClusterID, l.Topic, l.Partition)}, progressBase: done}
		if err := lv.run(ctx); err != nil {
			return rep, err
		}
		done += lv.lr.Leaves
		rep.Logs = append(rep.Logs, lv.lr)
	}
	if len(rep.Logs) == 0 {
		return rep, errors.New("nothing to verify: no audit leaves (is audit.enabled on the tap?)")
	}
	return rep, nil
}

// maxCandidates bounds the changed rows a log keeps to pair them into
// reorderings; past it a changed row is reported as changed at once.
const maxCandidates = 256

type logVerify struct {
	v            AuditVerify
	store        *chstore.Store
	rep          *AuditVerifyReport
	lr           AuditLogReport
	progressBase uint64
	candidates   []candidate
}

// candidate is a changed row kept to tell whether it was moved.
type candidate struct {
	offset    int64
	leafIndex uint64
	orderID   string
	stored    auditor.Hash
	salt      auditor.Salt
	row       []byte
}

// ckpt is one checkpoint to compare with the rebuilt tree.
type ckpt struct {
	size uint64
	root auditor.Hash
	from string
}

func (lv *logVerify) find(f AuditFinding) {
	f.Topic, f.Partition = lv.lr.Topic, lv.lr.Partition
	lv.rep.Findings = append(lv.rep.Findings, f)
}

func (lv *logVerify) ckptFinding(kind string, size uint64, format string, a ...any) {
	lv.find(AuditFinding{Kind: kind, Offset: -1, Size: size, Detail: fmt.Sprintf(format, a...)})
}

// storedRow is one stored copy of a record's row.
type storedRow struct {
	offset  int64
	table   string
	orderID string
	row     []byte
}

func (lv *logVerify) run(ctx context.Context) error {
	checks, err := lv.checkpoints(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	leafNext, leafStop, leafErr := pull(func(fn func(chstore.AuditLeafRow) error) error {
		return lv.store.AuditLeaves(ctx, lv.lr.Topic, lv.lr.Partition, fn)
	})
	defer leafStop()
	rowNext, rowStop, rowErr := lv.rows(ctx)
	defer rowStop()
	// Cancelled before the iterators stop, so a read left early (a broken
	// log) ends its query rather than draining it.
	defer cancel()

	tree := auditor.NewLog()
	var next int64 = -1 // the offset the next leaf must start at
	var prev *chstore.AuditLeafRow
	row, rowOK := rowNext()
	// extraBefore consumes the rows at offsets below end, which no record
	// leaf covers: extra, or before the log when it has not started.
	extraBefore := func(end int64) {
		for rowOK && row.offset < end {
			if next < 0 {
				lv.lr.Before++
			} else {
				lv.find(AuditFinding{Kind: FindingExtra, Offset: row.offset, OrderID: row.orderID,
					Detail: fmt.Sprintf("a %s row the log has no record leaf for", row.table)})
			}
			lv.lr.Rows++
			row, rowOK = rowNext()
		}
	}
	for {
		r, ok := leafNext()
		if !ok {
			break
		}
		if prev != nil && r.LeafIndex == prev.LeafIndex {
			if !bytes.Equal(r.Leaf, prev.Leaf) {
				idx := r.LeafIndex
				lv.find(AuditFinding{Kind: FindingBrokenLog, Offset: r.Offset, LeafIndex: &idx, OrderID: r.OrderID,
					Detail: "two different leaves stored at one index"})
			}
			continue // a retried insert stored outside the deduplication window
		}
		idx := r.LeafIndex
		if r.LeafIndex != tree.Size() {
			return lv.broken(r, fmt.Sprintf("leaf index %d where %d was due: leaves missing or out of order", r.LeafIndex, tree.Size()))
		}
		if auditor.LeafHash(r.Leaf) != r.LeafHash {
			return lv.broken(r, "leaf_hash is not the hash of the leaf")
		}
		leaf, err := auditor.ParseLeaf(r.Leaf)
		if err != nil {
			return lv.broken(r, "leaf does not parse: "+err.Error())
		}
		if leaf.Topic != lv.lr.Topic || leaf.Partition != lv.lr.Partition {
			return lv.broken(r, fmt.Sprintf("leaf of %s/%d stored in this log", leaf.Topic, leaf.Partition))
		}
		if next >= 0 && leaf.Offset != next && leaf.Kind != auditor.KindTruncation {
			return lv.broken(r, fmt.Sprintf("leaf starts at offset %d, the previous ended at %d: offsets skipped or logged twice", leaf.Offset, next))
		}
		if _, err := tree.Append(r.LeafHash); err != nil {
			return fmt.Errorf("rebuild %s: %w", lv.lr.Origin, err)
		}
		lv.lr.Leaves++
		if lv.v.Progress != nil && lv.lr.Leaves%1024 == 0 {
			lv.v.Progress(lv.progressBase + lv.lr.Leaves)
		}
		for len(checks) > 0 && checks[0].size <= tree.Size() {
			c := checks[0]
			checks = checks[1:]
			if c.size == tree.Size() && c.root != tree.Root() {
				lv.ckptFinding(FindingCheckpoint, c.size, "the %s checkpoint's root is not the root of the log's first %d leaves", c.from, c.size)
			}
		}
		switch leaf.Kind {
		case auditor.KindRecord:
			lv.lr.Records++
			extraBefore(leaf.Offset)
			next = leaf.Offset + 1
			var copies []storedRow
			for rowOK && row.offset == leaf.Offset {
				copies = append(copies, row)
				lv.lr.Rows++
				row, rowOK = rowNext()
			}
			lv.record(leaf, idx, r, copies)
		case auditor.KindGap:
			lv.lr.Gaps++
			extraBefore(leaf.Offset)
			next = leaf.End
		default: // a truncation: the new leader's offsets are logged again
			next = leaf.Offset
		}
		rr := r
		prev = &rr
	}
	if err := firstErr(*leafErr, *rowErr); err != nil {
		return err
	}
	if next >= 0 {
		extraBefore(next)
	}
	for rowOK {
		if next < 0 {
			lv.lr.Before++
		} else {
			lv.lr.After++
		}
		lv.lr.Rows++
		row, rowOK = rowNext()
	}
	if err := *rowErr; err != nil {
		return err
	}
	for _, c := range checks {
		lv.ckptFinding(FindingCheckpoint, c.size, "the %s checkpoint covers %d leaves, the log has %d: leaves lost", c.from, c.size, tree.Size())
	}
	lv.pairCandidates()
	if lv.v.Progress != nil {
		lv.v.Progress(lv.progressBase + lv.lr.Leaves)
	}
	return nil
}

// broken reports a log that cannot be rebuilt past leaf r; its rows are
// not checked further.
func (lv *logVerify) broken(r chstore.AuditLeafRow, detail string) error {
	idx := r.LeafIndex
	lv.find(AuditFinding{Kind: FindingBrokenLog, Offset: r.Offset, LeafIndex: &idx, OrderID: r.OrderID,
		Detail: detail + "; the rest of the log is not checked"})
	return nil
}

// record checks the stored copies of one record against its leaf.
func (lv *logVerify) record(leaf auditor.Leaf, idx uint64, r chstore.AuditLeafRow, copies []storedRow) {
	if len(copies) == 0 {
		lv.find(AuditFinding{Kind: FindingMissing, Offset: leaf.Offset, LeafIndex: &idx, OrderID: r.OrderID,
			Detail: "the log has this record, ClickHouse no row"})
		return
	}
	if len(r.Salt) != auditor.SaltSize {
		lv.lr.Erased++ // erased rows are not checked yet
		return
	}
	salt := auditor.Salt(r.Salt)
	matched := false
	var differing []storedRow
	for _, c := range copies {
		if auditor.StoredCommitment(salt, c.row) == leaf.Stored {
			matched = true
			continue
		}
		if !slices.ContainsFunc(differing, func(d storedRow) bool { return bytes.Equal(d.row, c.row) }) {
			differing = append(differing, c)
		}
	}
	if !matched && len(differing) > 0 {
		first := differing[0]
		differing = differing[1:]
		if len(lv.candidates) < maxCandidates {
			lv.candidates = append(lv.candidates, candidate{offset: leaf.Offset, leafIndex: idx, orderID: firstNonEmpty(r.OrderID, first.orderID),
				stored: leaf.Stored, salt: salt, row: first.row})
		} else {
			lv.find(AuditFinding{Kind: FindingChanged, Offset: leaf.Offset, LeafIndex: &idx, OrderID: firstNonEmpty(r.OrderID, first.orderID),
				Detail: fmt.Sprintf("the %s row does not recompute to its leaf's C_stored", first.table)})
		}
	}
	for _, d := range differing {
		lv.find(AuditFinding{Kind: FindingDuplicated, Offset: leaf.Offset, LeafIndex: &idx, OrderID: firstNonEmpty(d.orderID, r.OrderID),
			Detail: fmt.Sprintf("a second, different %s row for this record", d.table)})
	}
}

// pairCandidates reports each changed row as reordered when it is, with
// another changed record's salt, that record's row: it was moved from
// that offset to this one. The others are changed.
func (lv *logVerify) pairCandidates() {
	for i, a := range lv.candidates {
		idx := a.leafIndex
		f := AuditFinding{Kind: FindingChanged, Offset: a.offset, LeafIndex: &idx, OrderID: a.orderID,
			Detail: "the row does not recompute to its leaf's C_stored"}
		for j, b := range lv.candidates {
			if i != j && auditor.StoredCommitment(b.salt, a.row) == b.stored {
				f.Kind, f.Detail = FindingReordered, fmt.Sprintf("the row stored at offset %d is the record logged at offset %d", a.offset, b.offset)
				break
			}
		}
		lv.find(f)
	}
	lv.candidates = nil
}

// rows streams the partition's events and quarantine rows merged by
// offset, each as the stored row the leaf's C_stored commits to.
func (lv *logVerify) rows(ctx context.Context) (next func() (storedRow, bool), stop func(), errp *error) {
	evNext, evStop, evErr := pull(func(fn func(event.Event) error) error {
		return lv.store.AuditEventRows(ctx, lv.lr.Topic, lv.lr.Partition, fn)
	})
	qNext, qStop, qErr := pull(func(fn func(event.Quarantined) error) error {
		return lv.store.AuditQuarantineRows(ctx, lv.lr.Topic, lv.lr.Partition, fn)
	})
	var err error
	ev, evOK := evNext()
	q, qOK := qNext()
	next = func() (storedRow, bool) {
		var r storedRow
		var rec auditor.StoredRecord
		switch {
		case evOK && (!qOK || ev.Offset <= q.Offset):
			rec, r = StoredEvent(&ev), storedRow{offset: ev.Offset, table: "events", orderID: ev.OrderID}
			ev, evOK = evNext()
		case qOK:
			rec, r = StoredQuarantined(&q), storedRow{offset: q.Offset, table: "quarantine"}
			q, qOK = qNext()
		default:
			err = firstErr(err, *evErr, *qErr)
			return r, false
		}
		b, merr := rec.MarshalBinary()
		if merr != nil {
			// A row the encoding refuses (a field over its limit) cannot
			// match any leaf: it is checked as an empty row.
			b = nil
		}
		r.row = b
		return r, true
	}
	return next, func() { evStop(); qStop() }, &err
}

var errStopped = errors.New("stopped")

// pull turns a streaming read into a pull iterator; *errp is the read's
// error once next has returned false.
func pull[T any](read func(fn func(T) error) error) (next func() (T, bool), stop func(), errp *error) {
	var err error
	seq := func(yield func(T) bool) {
		e := read(func(v T) error {
			if !yield(v) {
				return errStopped
			}
			return nil
		})
		if e != nil && !errors.Is(e, errStopped) {
			err = e
		}
	}
	next, stop = iter.Pull(iter.Seq[T](seq))
	return next, stop, &err
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
