package collector

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
)

// Audit turns on the tap's audit trail (docs/audit.md): every stored
// record, event or quarantined, becomes a leaf of its topic-partition's
// Merkle log, stored after the batch's rows, and the logs are
// checkpointed. The wiring code builds it from the audit block of the
// configuration; a nil *Audit in Settings leaves the trail off.
type Audit struct {
	// ClusterID names the cluster in the logs' origins.
	ClusterID string
	// Signer signs checkpoints; nil writes them unsigned.
	Signer *auditor.Signer
	// SourceKey keys C_source and order tags; nil leaves them zero.
	SourceKey *auditor.SourceKey
	// EveryLeaves and Every: a log is checkpointed once it has grown by
	// EveryLeaves since its last checkpoint, or has grown and its last
	// checkpoint is older than Every.
	EveryLeaves uint64
	Every       time.Duration
	// Dir, when set, is where every checkpoint is also appended, one file
	// per log.
	Dir string
}

// auditRec is what the tap keeps of one record of a batch for its leaf,
// computed once when the record is polled (salts are random: a retried
// insert must store the same leaves).
type auditRec struct {
	leaf    auditor.Leaf
	salt    auditor.Salt
	orderID string
}

// auditStage is a batch's leaves, staged on clones of the partitions'
// logs; the clones replace the logs once the leaves are stored.
type auditStage struct {
	rows []chstore.AuditLeafRow
	logs map[topicPartition]*auditLog // the clones
	base map[topicPartition]*auditLog // what they were cloned from
}

// auditLog is one partition's log and its last checkpoint.
type auditLog struct {
	p      *auditor.PartitionLog
	cpSize uint64
	cpAt   time.Time
}

// auditTrail appends the tap's batches to the logs. Its logs are loaded
// from the stored states when a partition is first seen and forgotten
// when the partition is revoked or lost.
type auditTrail struct {
	cfg   Audit
	store *chstore.Store
	log   zerolog.Logger

	mu   sync.Mutex
	logs map[topicPartition]*auditLog
}

func newAuditTrail(cfg Audit, store *chstore.Store, log zerolog.Logger) *auditTrail {
	if cfg.Signer == nil {
		log.Warn().Msg("audit checkpoints are unsigned: set audit.signing_key_file")
	}
	return &auditTrail{cfg: cfg, store: store, log: log, logs: map[topicPartition]*auditLog{}}
}

// record computes the leaf of a record the batch stores as row.
func (t *auditTrail) record(r *kgo.Record, row auditor.StoredRecord, orderID string) (auditRec, error) {
	salt := auditor.NewSalt()
	stored, err := row.Commit(salt)
	if err != nil {
		return auditRec{}, err
	}
	src := auditor.SourceRecord{Key: r.Key, Value: r.Value}
	if t.cfg.SourceKey != nil && len(r.Headers) > 0 {
		src.Headers = make([]auditor.Header, len(r.Headers))
		for i, h := range r.Headers {
			src.Headers[i] = auditor.Header{Name: h.Key, Value: h.Value}
		}
	}
	return auditRec{salt: salt, orderID: orderID, leaf: auditor.Leaf{
		Kind: auditor.KindRecord, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		LeaderEpoch: r.LeaderEpoch, TimestampMs: r.Timestamp.UnixMilli(), Stored: stored,
		Source: t.cfg.SourceKey.Commit(src), OrderTag: t.cfg.SourceKey.OrderTag(orderID),
	}}, nil
}

// add notes the leaf of a record added to b as an event or quarantined.
func (t *auditTrail) add(b *batch, r *kgo.Record, e *event.Event, q *event.Quarantined) {
	var rec auditRec
	var err error
	if e != nil {
		rec, err = t.record(r, StoredEvent(e), e.OrderID)
	} else {
		rec, err = t.record(r, StoredQuarantined(q), "")
	}
	if err != nil {
		b.auditErr = errors.Join(b.auditErr, fmt.Errorf("audit leaf of %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err))
		return
	}
	b.auditRecs = append(b.auditRecs, rec)
}

// stage appends the batch's records to clones of their logs, once per
// batch: a retried insert stores the same leaves. A record the log has
// passed (a redelivery) gets no leaf.
func (t *auditTrail) stage(ctx context.Context, b *batch) (*auditStage, error) {
	if b.auditErr != nil {
		return nil, b.auditErr // a row over the encoding's limits: never skip its leaf silently
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.load(ctx, b); err != nil {
		return nil, err
	}
	st := &auditStage{logs: map[topicPartition]*auditLog{}, base: map[topicPartition]*auditLog{}}
	last := map[topicPartition]int{} // the last row of each partition
	for i := range b.auditRecs {
		rec := &b.auditRecs[i]
		tp := topicPartition{rec.leaf.Topic, rec.leaf.Partition}
		l := st.logs[tp]
		if l == nil {
			base := t.logs[tp]
			l = &auditLog{p: base.p.Clone(), cpSize: base.cpSize, cpAt: base.cpAt}
			st.logs[tp], st.base[tp] = l, base
		}
		entries, err := l.p.AppendRecord(rec.leaf)
		if errors.Is(err, auditor.ErrAlreadyLogged) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		for _, e := range entries {
			row := chstore.AuditLeafRow{Topic: tp.topic, Partition: tp.partition, LeafIndex: e.Index,
				Kind: e.Leaf.Kind.String(), Offset: e.Leaf.Offset, End: e.Leaf.End, Leaf: e.Bytes, LeafHash: e.Hash}
			if e.Leaf.Kind == auditor.KindRecord {
				row.OrderID, row.Salt = rec.orderID, rec.salt[:]
			}
			st.rows = append(st.rows, row)
			last[tp] = len(st.rows) - 1
		}
	}
	for tp, i := range last {
		state, err := st.logs[tp].p.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("audit state of %s/%d: %w", tp.topic, tp.partition, err)
		}
		st.rows[i].State = state
	}
	return st, nil
}

// load reads the stored state and last checkpoint of every partition of
// b the trail does not hold.
func (t *auditTrail) load(ctx context.Context, b *batch) error {
	var missing []topicPartition
	for i := range b.auditRecs {
		tp := topicPartition{b.auditRecs[i].leaf.Topic, b.auditRecs[i].leaf.Partition}
		if t.logs[tp] == nil && !contains(missing, tp) {
			missing = append(missing, tp)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	states, err := t.store.AuditStates(ctx)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	stored := map[topicPartition][]byte{}
	for _, s := range states {
		stored[topicPartition{s.Topic, s.Partition}] = s.State
	}
	for _, tp := range missing {
		l := &auditLog{}
		if s, ok := stored[tp]; ok {
			if l.p, err = auditor.ParsePartitionState(s); err != nil {
				return fmt.Errorf("audit log of %s/%d: stored state: %w", tp.topic, tp.partition, err)
			}
		} else if l.p, err = auditor.NewPartitionLog(tp.topic, tp.partition); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		cps, err := t.store.Checkpoints(ctx, auditor.LogOrigin(t.cfg.ClusterID, tp.topic, tp.partition))
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if n := len(cps); n > 0 {
			l.cpSize, l.cpAt = cps[n-1].Size, cps[n-1].CreatedAt
		}
		t.logs[tp] = l
	}
	return nil
}

func contains(tps []topicPartition, tp topicPartition) bool {
	for _, x := range tps {
		if x == tp {
			return true
		}
	}
	return false
}

// stored swaps in the logs of a batch whose leaves are stored, and
// checkpoints those due. A partition revoked meanwhile keeps no log: its
// next owner loads the stored state.
func (t *auditTrail) stored(ctx context.Context, st *auditStage) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for tp, l := range st.logs {
		if t.logs[tp] == st.base[tp] {
			t.logs[tp] = l
		}
	}
	t.checkpoint(ctx, false)
}

// checkpoint signs and stores a checkpoint of every log that grew since
// its last one, when due (or always, with force). A failure is logged and
// tried again later: the leaves are stored, only the checkpoint waits.
func (t *auditTrail) checkpoint(ctx context.Context, force bool) {
	now := time.Now().UTC()
	for tp, l := range t.logs {
		size := l.p.Log().Size()
		if size == l.cpSize || (!force && size-l.cpSize < t.cfg.EveryLeaves && now.Sub(l.cpAt) < t.cfg.Every) {
			continue
		}
		origin := auditor.LogOrigin(t.cfg.ClusterID, tp.topic, tp.partition)
		if err := t.publish(ctx, l.p.Log().Checkpoint(origin), now); err != nil {
			t.log.Warn().Err(err).Str("origin", origin).Msg("audit checkpoint not stored; will try again")
			continue
		}
		l.cpSize, l.cpAt = size, now
	}
}

// publish signs c and stores it in ClickHouse and in the directory sink.
func (t *auditTrail) publish(ctx context.Context, c auditor.Checkpoint, now time.Time) error {
	sc, err := t.cfg.Signer.Sign(c)
	if err != nil {
		return err
	}
	if t.cfg.Dir != "" {
		if err := appendCheckpoint(t.cfg.Dir, sc); err != nil {
			return err
		}
	}
	return t.store.InsertCheckpoint(ctx, chstore.CheckpointRow{Origin: c.Origin, Size: c.Size, Root: c.Root,
		Note: sc.Note, Signed: sc.Signed, CreatedAt: now})
}

// appendCheckpoint appends a checkpoint to its log's file in dir,
// <origin, path-escaped>.checkpoints: per checkpoint a line
// "checkpoint <size> <note bytes>" and then the note, verbatim.
func appendCheckpoint(dir string, sc auditor.SignedCheckpoint) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint sink: %w", err)
	}
	name := filepath.Join(dir, url.PathEscape(sc.Origin)+".checkpoints")
	f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("checkpoint sink: %w", err)
	}
	_, err = fmt.Fprintf(f, "checkpoint %d %d\n%s", sc.Size, len(sc.Note), sc.Note)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("checkpoint sink %s: %w", name, err)
	}
	return nil
}

// forget drops the logs of partitions the tap no longer owns.
func (t *auditTrail) forget(gone map[string][]int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, parts := range gone {
		for _, p := range parts {
			delete(t.logs, topicPartition{topic, p})
		}
	}
}

// flush checkpoints every log that grew since its last checkpoint: the
// tap's last act when it stops.
func (t *auditTrail) flush(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.checkpoint(ctx, true)
}
