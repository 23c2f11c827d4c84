package collector

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
)

// How the tap opens a partition's log and keeps it from forking
// (docs/audit.md, "Never two inconsistent checkpoints" and "How the tap
// keeps the logs whole"): it resumes from the state stored on the log's
// newest leaf only if that state extends the log's last checkpoint, and
// before it stores a batch's leaves it checks that no other tap stored
// leaves of those logs since.

// ErrAuditLogDiverged marks a stored log the tap cannot resume without
// forking it: its newest state does not extend its last checkpoint (leaves
// or a batch removed, a forged or changed row), or its end is not one
// state. The collector's Run returns it, wrapped with the log's origin,
// and the tap stops: an operator runs `weft audit verify` to see what
// happened. It is never retried.
var ErrAuditLogDiverged = errors.New("the stored audit log does not extend its last checkpoint")

func diverged(origin, format string, args ...any) error {
	return fmt.Errorf("audit log %s: %s: %w", origin, fmt.Sprintf(format, args...), ErrAuditLogDiverged)
}

// open loads the log of tp from the state on its newest stored leaf and
// checks it against the log's last checkpoint; a log with no leaf starts
// empty, at the offset the tap began reading tp from when it is known
// (auditStart) and before b's first record of tp.
func (t *auditTrail) open(ctx context.Context, tp topicPartition, b *batch) (*auditLog, error) {
	origin := auditor.LogOrigin(t.cfg.ClusterID, tp.topic, tp.partition)
	head, err := t.store.AuditHead(ctx, tp.topic, tp.partition, 0)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &auditLog{}
	if err := t.restoreFromSink(ctx, tp, origin); err != nil {
		return nil, err
	}
	row, hasCP, err := t.store.LastCheckpoint(ctx, origin)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	var cp auditor.Checkpoint
	if hasCP {
		sc, err := auditor.ParseCheckpoint(row.Note, origin)
		if err != nil {
			return nil, diverged(origin, "its last checkpoint (size %d) does not parse: %v", row.Size, err)
		}
		cp, l.cp = sc.Checkpoint, &checkpointMark{size: sc.Size, at: row.CreatedAt}
	}
	if head.Size == 0 {
		if hasCP && cp.Size > 0 {
			return nil, diverged(origin, "its last checkpoint covers %d leaves and none is stored", cp.Size)
		}
		if l.p, err = auditor.NewPartitionLog(tp.topic, tp.partition); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		t.start(l.p, tp, b)
		return l, nil
	}
	if len(head.States) != 1 || len(head.States[0]) == 0 {
		return nil, diverged(origin, "its newest leaf (index %d) carries %d distinct states, want one: the log's end was cut or two writers forked it",
			head.Size-1, len(head.States))
	}
	if l.p, err = auditor.ParsePartitionState(head.States[0]); err != nil {
		return nil, diverged(origin, "the state on its newest leaf: %v", err)
	}
	if l.p.Topic() != tp.topic || l.p.Partition() != tp.partition || l.p.Log().Size() != head.Size {
		return nil, diverged(origin, "the state on its newest leaf (index %d) is of %s/%d at %d leaves",
			head.Size-1, l.p.Topic(), l.p.Partition(), l.p.Log().Size())
	}
	if hasCP {
		if err := t.extends(ctx, tp, cp, l.p.Log()); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// restoreFromSink stores in ClickHouse the checkpoints of the log origin
// that reached the sink but not ClickHouse because the process that signed
// them died between the two writes (the tap writes the sink first): each
// newer than every stored checkpoint of the log, with the root of the
// state stored on its last leaf, and that state reproduced by the stored
// leaves since the newest stored checkpoint (auditTrail.extends): so it is
// the tap's own, and the leaves it covers are unchanged. Anything else in
// the sink and not in ClickHouse stays for `weft audit verify` to report as
// a missing checkpoint.
func (t *auditTrail) restoreFromSink(ctx context.Context, tp topicPartition, origin string) error {
	if t.cfg.Dir == "" {
		return nil
	}
	notes, err := readSink(sinkFile(t.cfg.Dir, origin))
	if err != nil || len(notes) == 0 {
		return err
	}
	rows, err := t.store.Checkpoints(ctx, origin)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	// The newest stored checkpoint: a sink checkpoint is stored only when
	// the stored leaves since it reproduce the sink checkpoint's root.
	last := auditor.Checkpoint{Origin: origin}
	stored := map[string]bool{}
	for _, r := range rows {
		stored[string(r.Note)] = true
	}
	if len(rows) > 0 {
		sc, err := auditor.ParseCheckpoint(rows[len(rows)-1].Note, origin)
		if err != nil {
			return nil // open reports it
		}
		last = sc.Checkpoint
	}
	for _, n := range notes {
		sc, err := auditor.ParseCheckpoint(n, origin)
		if stored[string(n)] || err != nil || sc.Size == 0 || sc.Size <= last.Size {
			continue
		}
		states, err := t.store.AuditStatesAt(ctx, tp.topic, tp.partition, sc.Size-1)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		i := slices.IndexFunc(states, func(s []byte) bool {
			p, err := auditor.ParsePartitionState(s)
			return err == nil && p.Log().Size() == sc.Size && p.Log().Root() == sc.Root
		})
		if i < 0 {
			continue
		}
		at, _ := auditor.ParsePartitionState(states[i])
		if err := t.extends(ctx, tp, last, at.Log()); errors.Is(err, ErrAuditLogDiverged) {
			continue // the leaves do not give its root: verify reports it, open stops
		} else if err != nil {
			return err
		}
		row := chstore.CheckpointRow{Origin: origin, Size: sc.Size, Root: sc.Root, Note: n, Signed: sc.Signed, CreatedAt: time.Now().UTC()}
		if err := t.store.InsertCheckpoint(ctx, row); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		last = sc.Checkpoint
		t.log.Info().Str("origin", origin).Uint64("size", sc.Size).
			Msg("audit: stored a checkpoint that reached the sink but not ClickHouse (the process that signed it stopped between the two writes)")
	}
	return nil
}

// extends checks, with auditor.VerifyExtends, that the stored log to is
// the log at the checkpoint cp with the stored leaves since appended. The
// log at cp's size is the state stored on leaf cp.Size-1 (the tap signs
// only states it stored), trusted once its root is cp's.
func (t *auditTrail) extends(ctx context.Context, tp topicPartition, cp auditor.Checkpoint, to *auditor.Log) error {
	switch {
	case cp.Size > to.Size():
		return diverged(cp.Origin, "its stored state has %d leaves, behind its last checkpoint's %d: leaves were removed", to.Size(), cp.Size)
	case cp.Size == to.Size():
		if to.Root() != cp.Root {
			return diverged(cp.Origin, "its stored state at %d leaves has another root than its last checkpoint of that size", cp.Size)
		}
		return nil
	}
	from := auditor.NewLog()
	if cp.Size > 0 {
		states, err := t.store.AuditStatesAt(ctx, tp.topic, tp.partition, cp.Size-1)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		from = nil
		for _, s := range states {
			if p, err := auditor.ParsePartitionState(s); err == nil && p.Log().Size() == cp.Size && p.Log().Root() == cp.Root {
				from = p.Log()
				break
			}
		}
		if from == nil {
			return diverged(cp.Origin, "no state stored on leaf %d has the root of its last checkpoint (size %d)", cp.Size-1, cp.Size)
		}
	}
	var readErr error
	src := auditor.LeafSourceFunc(func(ctx context.Context, begin, end uint64, fn func(auditor.Hash) error) error {
		var fnErr error
		err := t.store.AuditLeafHashes(ctx, tp.topic, tp.partition, begin, end, func(h [32]byte) error {
			fnErr = fn(auditor.Hash(h))
			return fnErr
		})
		if err != nil && fnErr == nil {
			readErr = err
		}
		return err
	})
	if err := auditor.VerifyExtends(ctx, from, src, to); err != nil {
		if readErr != nil || ctx.Err() != nil {
			return fmt.Errorf("audit: %w", err) // ClickHouse, not the log: retried
		}
		return diverged(cp.Origin, "its stored state does not extend its last checkpoint (size %d): %v", cp.Size, err)
	}
	return nil
}

// start starts a new log where the tap began reading tp, when that is
// known and before b's first record of tp: the offsets between (an aborted
// transaction, control records, compacted records at the start) become a
// gap leaf instead of going unaccounted for.
func (t *auditTrail) start(p *auditor.PartitionLog, tp topicPartition, b *batch) {
	if t.startOffset == nil {
		return
	}
	for i := range b.auditRecs {
		if l := &b.auditRecs[i].leaf; l.Topic == tp.topic && l.Partition == tp.partition {
			if s, ok := t.startOffset(tp, b); ok && s < l.Offset {
				_ = p.StartAt(s) // p is new and s ≥ 0: cannot fail
			}
			return
		}
	}
}

// moved returns the partitions of st whose stored log is neither the one
// st was staged on nor st's own (an earlier attempt of this insert that
// landed although it reported an error): another tap stored leaves of them
// since this one loaded them. Only the end of each log is read, all in one
// query.
func (t *auditTrail) moved(ctx context.Context, st *auditStage) ([]topicPartition, error) {
	ends := make([]chstore.AuditLogEnd, len(st.grown))
	for i, tp := range st.grown {
		ends[i] = chstore.AuditLogEnd{Topic: tp.topic, Partition: tp.partition, From: max(st.base[tp].p.Log().Size(), 1) - 1}
	}
	heads, err := t.store.AuditHeads(ctx, ends)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	var out []topicPartition
	for i, tp := range st.grown {
		if !isHead(heads[i], st.base[tp].p) && !isHead(heads[i], st.logs[tp].p) {
			out = append(out, tp)
		}
	}
	return out, nil
}

// isHead reports whether head is the end of the log p: the same size and
// p's state alone on its newest leaf (no leaf for an empty log).
func isHead(head chstore.AuditHead, p *auditor.PartitionLog) bool {
	if head.Size != p.Log().Size() {
		return false
	}
	if head.Size == 0 {
		return true
	}
	state, err := p.MarshalBinary()
	return err == nil && len(head.States) == 1 && bytes.Equal(head.States[0], state)
}

// reload forgets the logs of tps that st was staged on, so that the next
// stage loads them again from what is stored.
func (t *auditTrail) reload(st *auditStage, tps []topicPartition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tp := range tps {
		if t.logs[tp] == st.base[tp] {
			delete(t.logs, tp)
		}
	}
}

// maxRestages bounds how many times one insert stages its leaves again
// because logs moved on under it; past it the insert fails and is retried.
const maxRestages = 3

// checkAuditLogs makes sure, just before the batch's leaves are stored,
// that no other tap stored leaves of the batch's logs since this one
// loaded them (the partition was lost while the batch was in flight, and
// its next owner got there first). The logs that moved are loaded again
// and the batch's leaves staged again on them: the records the other tap
// logged get no second leaf.
func (c *Collector) checkAuditLogs(ctx context.Context, b *batch) error {
	for {
		moved, err := c.audit.moved(ctx, b.auditStage)
		if err != nil || len(moved) == 0 {
			return err
		}
		if b.restaged == maxRestages {
			return fmt.Errorf("audit: the logs of %v keep moving under this tap", moved)
		}
		for _, tp := range moved {
			c.log.Warn().Str("topic", tp.topic).Int32("partition", tp.partition).
				Msg("another tap stored leaves of this audit log since it was loaded; staging the batch's leaves again on it")
		}
		c.audit.reload(b.auditStage, moved)
		st, err := c.audit.stage(ctx, b)
		if err != nil {
			return err
		}
		b.auditStage, b.restaged = st, b.restaged+1
	}
}

// auditToken is the deduplication token of a staging's leaves: the batch's
// token and a hash of the states the staging ends its logs at, which
// commit to every leaf. A retry of one staging carries the same token and
// is dropped when an earlier attempt landed; leaves staged again (on logs
// another tap moved) or after Kafka reused offsets (a truncation: the same
// offset ranges as an earlier batch) are other leaves, under another token.
func auditToken(batchToken string, st *auditStage) string {
	states := make([]string, 0, len(st.grown))
	for i := range st.rows {
		if len(st.rows[i].State) > 0 {
			states = append(states, string(st.rows[i].State))
		}
	}
	slices.Sort(states)
	h := sha256.New()
	for _, s := range states {
		h.Write([]byte(s))
	}
	return batchToken + ":a:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// auditStart is where the tap began reading tp, for a new log to account
// from: the group's committed offset, else (start_from: earliest) the log
// start offset Kafka reported with b's first records of tp. With
// start_from: latest and nothing committed it is not known, and the log
// starts at its first record (docs/audit.md).
func (c *Collector) auditStart(tp topicPartition, b *batch) (int64, bool) {
	if c.client != nil {
		if eo, ok := c.client.CommittedOffsets()[tp.topic][tp.partition]; ok && eo.Offset >= 0 {
			return eo.Offset, true
		}
	}
	if s, ok := b.logStarts[tp]; ok && s >= 0 && c.cfg.StartFrom == "earliest" {
		return s, true
	}
	return 0, false
}
