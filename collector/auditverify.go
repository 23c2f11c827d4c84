package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
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
	// With Kafka (--kafka):
	FindingSourceMismatch = "source-mismatch" // the record leaf's C_source is not Kafka's record at that offset
	FindingNeverStored    = "never-stored"    // a record Kafka holds where the log has a gap, or past the log below the tap's committed offset
)

// Progress phases: the leaves verified, then (with Kafka) the Kafka
// records read.
const (
	PhaseLeaves = "leaves"
	PhaseKafka  = "kafka"
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
	if f.Topic == "" {
		where = "actions"
	}
	if f.LeafIndex != nil && f.Topic == "" {
		where += fmt.Sprintf(" #%d", *f.LeafIndex)
	}
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
	//
	// A running tap goes on storing while verify reads: the log is
	// verified up to its size when verify listed the logs, after reading
	// its checkpoints and before reading any row (VerifyAudit).
	Before uint64 `json:"rows_before_log"`
	After  uint64 `json:"rows_after_log"`
	// Erased counts record leaves whose salt and payload an erase action
	// removed: their rows cannot be checked, and the action says why.
	Erased uint64 `json:"erased"`
	// From is where a --since run started; nil when the whole log was
	// verified.
	From *AuditLogFrom `json:"from,omitempty"`
	// Kafka is what Kafka holds of the log (with AuditVerify.Kafka).
	Kafka *AuditKafkaReport `json:"kafka,omitempty"`
}

// AuditLogFrom is where a --since run started verifying a log: from the
// state stored with leaf Leaf-1, the newest stored before the time given.
// Leaves before Leaf, and rows before Offset, were not read.
type AuditLogFrom struct {
	Leaf     uint64    `json:"leaf"`
	Offset   int64     `json:"offset"`
	StoredAt time.Time `json:"stored_at"`
	// CheckpointsBefore counts the checkpoints of sizes below Leaf, whose
	// roots were not compared (their signatures and sizes were).
	CheckpointsBefore int `json:"checkpoints_before"`
}

// AuditVerifyReport is the answer of `weft audit verify`.
type AuditVerifyReport struct {
	// Authenticated: every checkpoint's signature was checked with a key.
	Authenticated bool             `json:"authenticated"`
	VerifierKey   string           `json:"verifier_key,omitempty"`
	Logs          []AuditLogReport `json:"logs"`
	// Actions is the operator-actions log's report (nil when it is empty).
	Actions *AuditLogReport `json:"actions,omitempty"`
	// Since is the --since time: each log was verified from the newest
	// state stored before it (AuditLogReport.From).
	Since time.Time `json:"since,omitzero"`
	// Kafka says whether Kafka was compared with the leaves, and
	// SourceChecked whether records were matched by C_source (with the
	// source key) or by offset only.
	Kafka         bool           `json:"kafka"`
	SourceChecked bool           `json:"source_checked"`
	Findings      []AuditFinding `json:"findings"`
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
	// Since, when set, verifies only what was stored since: each log from
	// the newest state stored with a leaf before Since, through every
	// later checkpoint.
	Since time.Time
	// Kafka, when set, also compares Kafka with the leaves.
	Kafka *AuditKafka
	// Progress, when set, is called with the phase (PhaseLeaves, then
	// PhaseKafka) and the leaves verified or Kafka records read so far.
	Progress func(phase string, n uint64)
}

// ErrNothingToVerify is VerifyAudit's error when there is no audit leaf
// and no operator action at all.
var ErrNothingToVerify = errors.New("nothing to verify: no audit leaves (is audit.enabled on the tap?)")

// VerifyAudit verifies every log (of v.Topic) in store. An error means it
// could not verify; findings mean it did and something does not hold.
func VerifyAudit(ctx context.Context, store *chstore.Store, v AuditVerify) (AuditVerifyReport, error) {
	rep := AuditVerifyReport{Authenticated: v.Verifier != nil, Since: v.Since, Findings: []AuditFinding{}}
	if v.Verifier != nil {
		rep.VerifierKey = v.Verifier.Key()
	}
	if err := auditor.ValidClusterID(v.ClusterID); err != nil {
		return rep, fmt.Errorf("audit.cluster_id: %w", err)
	}
	var committed kadm.OffsetResponses
	if v.Kafka != nil {
		c, err := kafkaCommitted(ctx, *v.Kafka)
		if err != nil {
			return rep, err
		}
		committed = c
	}
	// The order of the reads is what lets verify run beside a tap that
	// goes on storing: every log's checkpoints first, then each log's size
	// (a checkpoint is made after its leaves are stored, so none is past
	// it but by truncation), then the rows (a leaf is stored after its
	// row, so every leaf below the size has its row read).
	named, err := store.AuditLogs(ctx)
	if err != nil {
		return rep, err
	}
	byLog := map[topicPartition]*logVerify{}
	newLog := func(topic string, partition int32) *logVerify {
		return &logVerify{v: v, store: store, rep: &rep, lr: AuditLogReport{Topic: topic, Partition: partition,
			Origin: auditor.LogOrigin(v.ClusterID, topic, partition)}}
	}
	for _, l := range named {
		if v.Topic != "" && l.Topic != v.Topic {
			continue
		}
		lv := newLog(l.Topic, l.Partition)
		if lv.checks, err = lv.checkpoints(ctx); err != nil {
			return rep, err
		}
		byLog[topicPartition{l.Topic, l.Partition}] = lv
	}
	logs, err := store.AuditLogs(ctx)
	if err != nil {
		return rep, err
	}
	actions, erased, err := verifyActions(ctx, store, v, &rep)
	if err != nil {
		return rep, err
	}
	rep.Actions = actions
	stream := newVerifyRows(ctx, store, v.Topic)
	defer stream.stop()
	var done uint64
	var lvs []*logVerify
	for _, l := range logs {
		if v.Topic != "" && l.Topic != v.Topic {
			continue
		}
		lv := byLog[topicPartition{l.Topic, l.Partition}]
		if lv == nil {
			// A log begun since the first listing: its checkpoints are
			// read now, and those past its listed size left to the next run.
			lv = newLog(l.Topic, l.Partition)
			lv.late = true
		}
		lv.progressBase, lv.erased, lv.stream, lv.bound = done, erased, stream, l.Size
		if err := lv.run(ctx); err != nil {
			return rep, err
		}
		done += lv.lr.Leaves
		rep.Logs = append(rep.Logs, lv.lr)
		lvs = append(lvs, lv)
	}
	if len(rep.Logs) == 0 && rep.Actions == nil {
		return rep, ErrNothingToVerify
	}
	if v.Kafka != nil {
		rep.Kafka, rep.SourceChecked = true, v.Kafka.SourceKey != nil
		if err := verifyKafka(ctx, store, *v.Kafka, committed, v.Progress, &rep, lvs); err != nil {
			return rep, err
		}
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
	// erased are the records successful erase actions name, with the
	// action's index.
	erased map[auditor.Position]uint64

	// What run leaves for the Kafka phase: whether the log broke, its
	// size and next offset as verified, and the leaf (kFrom) and offset
	// (kFirst, -1 when no leaf) Kafka is compared from: the log's start
	// or where --since started, or past the last truncation leaf (Kafka
	// no longer holds what came before it).
	isBroken bool
	size     uint64
	next     int64
	kFrom    uint64
	kFirst   int64
	// stream is every partition's rows, read once (verifyRows).
	stream *verifyRows
	// bound is the log's size when verify listed the logs, after it read
	// their checkpoints (checks) and before the rows: leaves past it were
	// stored after the rows were read from. late: the log was begun after
	// its checkpoints would have been read.
	bound  uint64
	checks []ckpt
	late   bool
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
	checks := lv.checks
	if lv.late {
		var err error
		if checks, err = lv.checkpoints(ctx); err != nil {
			return err
		}
	}
	tree := auditor.NewLog()
	var next int64 = -1 // the offset the next leaf must start at
	if !lv.v.Since.IsZero() {
		start, err := lv.since(ctx)
		if err != nil || lv.isBroken {
			return err
		}
		if start != nil {
			tree, next = start.Log().Clone(), start.Next()
		}
	}
	lv.kFrom, lv.kFirst = tree.Size(), next
	// reach compares the rebuilt tree with the checkpoints it has reached.
	reach := func() {
		for len(checks) > 0 && checks[0].size <= tree.Size() {
			c := checks[0]
			checks = checks[1:]
			switch {
			case c.size < tree.Size() && lv.lr.From != nil:
				lv.lr.From.CheckpointsBefore++ // before where --since started
			case c.size == tree.Size() && c.root != tree.Root():
				lv.ckptFinding(FindingCheckpoint, c.size, "the %s checkpoint's root is not the root of the log's first %d leaves%s", c.from, c.size, lv.fromState(c.size))
			}
		}
	}
	reach()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	leafNext, leafStop, leafErr := pull(func(fn func(chstore.AuditLeafRow) error) error {
		return lv.store.AuditLeavesFrom(ctx, lv.lr.Topic, lv.lr.Partition, tree.Size(), fn)
	})
	defer leafStop()
	rowNext, rowStop, rowErr := lv.rows(ctx, max(next, 0))
	defer rowStop()
	// Cancelled before the iterators stop, so a read left early (a broken
	// log) ends its query rather than draining it.
	defer cancel()

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
		if !ok || r.LeafIndex >= lv.bound {
			break // stored after the rows were read from: the next run's
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
			lv.v.Progress(PhaseLeaves, lv.progressBase+lv.lr.Leaves)
		}
		reach()
		if lv.kFirst < 0 {
			lv.kFirst = leaf.Offset
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
			lv.kFrom, lv.kFirst = idx+1, leaf.Offset // Kafka holds only what follows
		}
		if len(r.State) > 0 {
			lv.checkState(r, tree, next)
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
		lv.v.Progress(PhaseLeaves, lv.progressBase+lv.lr.Leaves)
	}
	lv.size, lv.next = tree.Size(), next
	return nil
}

// broken reports a log that cannot be rebuilt past leaf r; its rows are
// not checked further.
func (lv *logVerify) broken(r chstore.AuditLeafRow, detail string) error {
	lv.isBroken = true
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
		if action, ok := lv.erased[auditor.Position{Topic: leaf.Topic, Partition: leaf.Partition, Offset: leaf.Offset}]; ok {
			lv.lr.Erased++
			if c, restored := restoredCopy(copies); restored {
				lv.find(AuditFinding{Kind: FindingErasedRestored, Offset: leaf.Offset, LeafIndex: &idx, OrderID: firstNonEmpty(r.OrderID, c.orderID),
					Detail: fmt.Sprintf("erased by action #%d, but a %s row holds a payload again (a redelivery from Kafka stored it again?): run weft audit erase again", action, c.table)})
			}
			return
		}
		lv.find(AuditFinding{Kind: FindingErasedUnlogged, Offset: leaf.Offset, LeafIndex: &idx, OrderID: r.OrderID,
			Detail: "the record's salt is gone, so its row cannot be checked, and no erase action names it"})
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

// rows streams the partition's events and quarantine rows from offset
// from on, merged by offset, each as the stored row the leaf's C_stored
// commits to: its part of the one read of every partition's rows
// (verifyRows), the rows below from skipped.
func (lv *logVerify) rows(_ context.Context, from int64) (next func() (storedRow, bool), stop func(), errp *error) {
	part := lv.stream.partition(lv.lr.Topic, lv.lr.Partition)
	return func() (storedRow, bool) {
		for {
			r, ok := part()
			if !ok || r.offset >= from {
				return r, ok
			}
		}
	}, func() {}, &lv.stream.err
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
