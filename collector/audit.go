package collector

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
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
	rows  []chstore.AuditLeafRow
	logs  map[topicPartition]*auditLog // the clones
	base  map[topicPartition]*auditLog // what they were cloned from
	grown []topicPartition             // the partitions with leaves in rows
}

// auditLog is one partition's log and its last checkpoint.
type auditLog struct {
	p  *auditor.PartitionLog
	cp *checkpointMark // shared by the log and its clones; nil: none yet
}

// checkpointMark is the size and time of a log's last checkpoint. The
// checkpoint pass sets it (under auditTrail.mu) on whichever of the log's
// clones is current by then.
type checkpointMark struct {
	size uint64
	at   time.Time
}

// auditTrail appends the tap's batches to the logs. Its logs are loaded
// from the stored states when a partition is first seen and forgotten
// when the partition is revoked or lost.
type auditTrail struct {
	cfg   Audit
	store *chstore.Store
	log   zerolog.Logger
	// startOffset says where the tap began reading a partition, for a new
	// log to account from (auditresume.go); nil: unknown.
	startOffset func(tp topicPartition, b *batch) (int64, bool)

	// What add reuses from one record to the next (it runs on the poll
	// goroutine only): the stored row, the source record's headers, and
	// random bytes for salts, read saltsRead at a time.
	row        auditor.StoredRecord
	srcHeaders []auditor.Header
	salts      []byte

	mu   sync.Mutex
	logs map[topicPartition]*auditLog

	metrics *metrics

	// kick asks the checkpoint loop for a pass (a batch was stored); pass
	// is held by a pass, so two never sign the same logs at once.
	kick chan struct{}
	pass sync.Mutex
	// unstored are checkpoints in the sink whose insert into ClickHouse
	// failed (it was down or died). A pass stores them, oldest first,
	// before it signs any new one: a checkpoint in the sink that
	// ClickHouse never gets is what verify reports as missing (a deleted
	// one). Held under pass.
	unstored []unstoredCheckpoint
}

// unstoredCheckpoint is a checkpoint in the sink, not yet in ClickHouse,
// and the mark to move once it is.
type unstoredCheckpoint struct {
	row  chstore.CheckpointRow
	mark *checkpointMark
}

// saltsRead is how many salts' worth of random bytes are read from
// crypto/rand at once.
const saltsRead = 128

func newAuditTrail(cfg Audit, store *chstore.Store, log zerolog.Logger, m *metrics) *auditTrail {
	if cfg.Signer == nil {
		log.Warn().Msg("audit checkpoints are unsigned: set audit.signing_key_file")
	}
	return &auditTrail{cfg: cfg, store: store, log: log, logs: map[topicPartition]*auditLog{}, metrics: m, kick: make(chan struct{}, 1)}
}

// salt returns a fresh random salt: the next 32 bytes of the random
// bytes read last from crypto/rand, each handed out once.
func (t *auditTrail) salt() auditor.Salt {
	if len(t.salts) < auditor.SaltSize {
		t.salts = make([]byte, saltsRead*auditor.SaltSize)
		_, _ = rand.Read(t.salts) // never fails since Go 1.24: it crashes the program instead
	}
	s := auditor.Salt(t.salts[:auditor.SaltSize])
	clear(t.salts[:auditor.SaltSize])
	t.salts = t.salts[auditor.SaltSize:]
	return s
}

// record computes the leaf of a record the batch stores as row.
func (t *auditTrail) record(r *kgo.Record, row *auditor.StoredRecord, orderID string) (auditRec, error) {
	salt := t.salt()
	stored, err := row.Commit(salt)
	if err != nil {
		return auditRec{}, err
	}
	src := auditor.SourceRecord{Key: r.Key, Value: r.Value}
	if t.cfg.SourceKey != nil && len(r.Headers) > 0 {
		t.srcHeaders = t.srcHeaders[:0]
		for _, h := range r.Headers {
			t.srcHeaders = append(t.srcHeaders, auditor.Header{Name: h.Key, Value: h.Value})
		}
		src.Headers = t.srcHeaders
	}
	rec := auditRec{salt: salt, orderID: orderID, leaf: auditor.Leaf{
		Kind: auditor.KindRecord, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		LeaderEpoch: r.LeaderEpoch, TimestampMs: r.Timestamp.UnixMilli(), Stored: stored,
		Source: t.cfg.SourceKey.Commit(src), OrderTag: t.cfg.SourceKey.OrderTag(orderID),
	}}
	clear(t.srcHeaders) // keep no record's headers reachable
	return rec, nil
}

// eventRow and quarantinedRow fill the reused row for record.
func (t *auditTrail) eventRow(e *event.Event) *auditor.StoredRecord {
	storedEvent(&t.row, e)
	return &t.row
}

func (t *auditTrail) quarantinedRow(q *event.Quarantined) *auditor.StoredRecord {
	storedQuarantined(&t.row, q)
	return &t.row
}

// add notes the leaf of a record added to b as an event or quarantined.
func (t *auditTrail) add(b *batch, r *kgo.Record, e *event.Event, q *event.Quarantined) {
	var rec auditRec
	var err error
	if e != nil {
		rec, err = t.record(r, t.eventRow(e), e.OrderID)
	} else {
		rec, err = t.record(r, t.quarantinedRow(q), "")
	}
	t.row.Value = nil // the payload belongs to the batch
	if err != nil {
		b.auditErr = errors.Join(b.auditErr, fmt.Errorf("audit leaf of %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err))
		return
	}
	b.auditRecs = append(b.auditRecs, rec)
}

// stage appends the batch's records to clones of their logs, once per
// batch: a retried insert stores the same leaves. A record the log has
// passed (a redelivery) gets no leaf; a data loss Kafka reported is a
// truncation leaf, in poll order (audittrunc.go).
func (t *auditTrail) stage(ctx context.Context, b *batch) (*auditStage, error) {
	if b.auditErr != nil {
		return nil, b.auditErr // a row over the encoding's limits: never skip its leaf silently
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.load(ctx, b); err != nil {
		return nil, err
	}
	// The rows reuse the storage of the batch's previous stage: a record
	// gets one leaf, or two after a gap.
	st := &auditStage{rows: slices.Grow(b.auditRows[:0], len(b.auditRecs)+8),
		logs: map[topicPartition]*auditLog{}, base: map[topicPartition]*auditLog{}}
	last := map[topicPartition]int{} // the last row of each partition
	truncs := b.auditTruncs
	for i := range b.auditRecs {
		for ; len(truncs) > 0 && truncs[0].at == i; truncs = truncs[1:] {
			t.truncate(st, truncs[0], last)
		}
		rec := &b.auditRecs[i]
		tp := topicPartition{rec.leaf.Topic, rec.leaf.Partition}
		l := t.staged(st, tp)
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
	for _, tr := range truncs {
		t.truncate(st, tr, last)
	}
	for tp, i := range last {
		st.grown = append(st.grown, tp)
		state, err := st.logs[tp].p.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("audit state of %s/%d: %w", tp.topic, tp.partition, err)
		}
		st.rows[i].State = state
	}
	b.auditRows = st.rows
	return st, nil
}

// staged returns the clone of tp's log that st stages on, cloning it on
// first use.
func (t *auditTrail) staged(st *auditStage, tp topicPartition) *auditLog {
	l := st.logs[tp]
	if l == nil {
		base := t.logs[tp]
		l = &auditLog{p: base.p.Clone(), cp: base.cp}
		st.logs[tp], st.base[tp] = l, base
	}
	return l
}

// load opens (auditresume.go) the log of every partition of b the trail
// does not hold.
func (t *auditTrail) load(ctx context.Context, b *batch) error {
	var missing []topicPartition
	for i := range b.auditRecs {
		tp := topicPartition{b.auditRecs[i].leaf.Topic, b.auditRecs[i].leaf.Partition}
		if t.logs[tp] == nil && !contains(missing, tp) {
			missing = append(missing, tp)
		}
	}
	for _, tr := range b.auditTruncs {
		if t.logs[tr.tp] == nil && !contains(missing, tr.tp) {
			missing = append(missing, tr.tp)
		}
	}
	for _, tp := range missing {
		l, err := t.open(ctx, tp, b)
		if err != nil {
			return err
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

// stored swaps in the logs of a batch whose leaves are stored, and asks
// the checkpoint loop for a pass. A partition revoked meanwhile keeps no
// log: its next owner loads the stored state.
func (t *auditTrail) stored(st *auditStage) {
	t.mu.Lock()
	for tp, l := range st.logs {
		if t.logs[tp] == st.base[tp] {
			t.logs[tp] = l
		}
	}
	t.mu.Unlock()
	select {
	case t.kick <- struct{}{}:
	default: // a pass is asked for already
	}
}

// checkpointTick is how often the checkpoint loop looks for logs due by
// time (audit.checkpoint.every) when no batch is stored: an idle log
// that grew is checkpointed within about a tick of its due time.
const checkpointTick = time.Second

// checkpoints runs the checkpoint loop until the returned stop is called:
// checkpoints are signed, written to the sink and stored off the store
// loop, after a batch is stored and on a timer. stop waits for a pass in
// progress.
func (t *auditTrail) checkpoints(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(min(checkpointTick, max(t.cfg.Every, 10*time.Millisecond)))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.kick:
			case <-tick.C:
			}
			// A pass is not cut short by the stop: a checkpoint written to
			// the sink and then cancelled on its way to ClickHouse would be
			// in the sink alone for good, which verify rightly reports.
			pass, endPass := context.WithTimeout(context.WithoutCancel(ctx), checkpointPass)
			t.checkpoint(pass, false)
			endPass()
		}
	}()
	return func() { cancel(); <-done }
}

// checkpointPass bounds one pass of the checkpoint loop, and so how long
// a stop waits for it.
const checkpointPass = 5 * time.Second

// checkpoint signs and stores a checkpoint of every log that grew since
// its last one, when due (or always, with force). A failure is logged and
// tried again later: the leaves are stored, only the checkpoint waits.
// The logs are read under the lock; signing and storing happen outside
// it, so the store loop does not wait for them.
func (t *auditTrail) checkpoint(ctx context.Context, force bool) {
	t.pass.Lock()
	defer t.pass.Unlock()
	for len(t.unstored) > 0 {
		u := t.unstored[0]
		if err := t.store.InsertCheckpoint(ctx, u.row); err != nil {
			if ctx.Err() == nil {
				t.log.Warn().Err(err).Str("origin", u.row.Origin).Msg("audit checkpoint not stored; will try again")
				t.metrics.checkpoints.WithLabelValues("failed").Inc()
			}
			return
		}
		t.unstored = t.unstored[1:]
		t.checkpointStored(u.mark, u.row.Size, u.row.CreatedAt)
	}
	type due struct {
		cp   auditor.Checkpoint
		mark *checkpointMark
	}
	var dues []due
	now := time.Now().UTC()
	t.mu.Lock()
	for tp, l := range t.logs {
		if l.cp == nil {
			l.cp = &checkpointMark{}
		}
		size := l.p.Log().Size()
		if size == l.cp.size || (!force && size-l.cp.size < t.cfg.EveryLeaves && now.Sub(l.cp.at) < t.cfg.Every) {
			continue
		}
		origin := auditor.LogOrigin(t.cfg.ClusterID, tp.topic, tp.partition)
		dues = append(dues, due{l.p.Log().Checkpoint(origin), l.cp})
	}
	t.mu.Unlock()
	for _, d := range dues {
		row, err := signToSink(t.cfg, d.cp, now)
		if err == nil {
			if err = t.store.InsertCheckpoint(ctx, row); err != nil {
				t.unstored = append(t.unstored, unstoredCheckpoint{row, d.mark})
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				t.log.Warn().Err(err).Str("origin", d.cp.Origin).Msg("audit checkpoint not stored; will try again")
				t.metrics.checkpoints.WithLabelValues("failed").Inc()
			}
			continue
		}
		t.checkpointStored(d.mark, d.cp.Size, now)
	}
}

// checkpointStored records that a checkpoint of size, signed at time at,
// is stored: the metrics, and its log's mark.
func (t *auditTrail) checkpointStored(m *checkpointMark, size uint64, at time.Time) {
	t.metrics.checkpoints.WithLabelValues("stored").Inc()
	t.metrics.lastCheckpoint.Set(float64(at.UnixMilli()) / 1e3)
	t.mu.Lock()
	defer t.mu.Unlock()
	if size > m.size {
		m.size, m.at = size, at
	}
}

// publishCheckpoint signs c with cfg's key (or leaves it unsigned) and
// stores it in the directory sink and in ClickHouse.
func publishCheckpoint(ctx context.Context, cfg Audit, store *chstore.Store, c auditor.Checkpoint, now time.Time) error {
	row, err := signToSink(cfg, c, now)
	if err != nil {
		return err
	}
	return store.InsertCheckpoint(ctx, row)
}

// signToSink signs c with cfg's key (or leaves it unsigned), appends it
// to the directory sink, and returns the row to store in ClickHouse.
func signToSink(cfg Audit, c auditor.Checkpoint, now time.Time) (chstore.CheckpointRow, error) {
	sc, err := cfg.Signer.Sign(c)
	if err != nil {
		return chstore.CheckpointRow{}, err
	}
	if cfg.Dir != "" {
		if err := appendCheckpoint(cfg.Dir, sc); err != nil {
			return chstore.CheckpointRow{}, err
		}
	}
	return chstore.CheckpointRow{Origin: c.Origin, Size: c.Size, Root: c.Root,
		Note: sc.Note, Signed: sc.Signed, CreatedAt: now}, nil
}

// appendCheckpoint appends a checkpoint to its log's file in dir,
// <origin, path-escaped>.checkpoints: per checkpoint a line
// "checkpoint <size> <note bytes>" and then the note, verbatim.
func appendCheckpoint(dir string, sc auditor.SignedCheckpoint) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint sink: %w", err)
	}
	name := sinkFile(dir, sc.Origin)
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

// sinkFile is the file of the log origin's checkpoints in the sink dir.
func sinkFile(dir, origin string) string {
	return filepath.Join(dir, url.PathEscape(origin)+".checkpoints")
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
// tap's last act when it stops, after the checkpoint loop stopped.
func (t *auditTrail) flush(ctx context.Context) {
	t.checkpoint(ctx, true)
}
