package replay

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
)

// ErrCancelled is returned by Run when its context ended: the batch under
// way was aborted and the job can be resumed.
var ErrCancelled = errors.New("cancelled")

// Run produces a job's items from its cursor on, rate records a second
// at most (0: no cap), one Kafka transaction per batch, and stores the
// cursor after each. It both starts a planned job and resumes one that
// was cancelled, failed or killed.
//
// Exactly once (docs/replay.md, "Exactly once"): the producer's
// transactional id is the job's, so starting it fences every earlier run
// of the job — the broker aborts a transaction a killed run left open, and
// a run still alive fails on its next write. Then the records of the job
// committed after the stored cursor (a run killed between its commit and
// its cursor write) are found by reading the targets, read_committed,
// from where the cursor says the job had reached, and are not produced
// again. What is committed in Kafka is the truth; the cursor may only lag.
func (r *Replayer) Run(ctx context.Context, id string, rate int) (Job, error) {
	j, err := r.Load(ctx, id)
	if err != nil {
		return Job{}, err
	}
	if j.Status == StatusFinished {
		return j, refuse("replay job %s is finished (%d records produced): nothing to resume", j.ID, j.Produced)
	}
	// The allow-list of this process, which may not be the one the job
	// was planned under.
	if err := r.CheckJob(ctx, j); err != nil {
		return j, err
	}
	phase := "started"
	if j.Status != StatusPlanned {
		phase = "resumed"
	}
	prod, err := kgo.NewClient(append(slices.Clone(r.s.Kafka),
		kgo.TransactionalID("weft-replay-"+j.ID),
		kgo.TransactionTimeout(time.Minute),
		kgo.RecordDeliveryTimeout(time.Minute),
		kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		return j, fmt.Errorf("kafka producer: %w", err)
	}
	defer prod.Close()
	if _, _, err := prod.ProducerID(ctx); err != nil {
		return j, fmt.Errorf("kafka: initialise the transactional producer of %s (is it allowed to write transactionally?): %w", j.ID, err)
	}
	done, err := r.committedAfterCursor(ctx, &j)
	if err != nil {
		return j, err
	}
	j.Status, j.Rate, j.Detail = StatusRunning, rate, ""
	if err := r.save(ctx, &j); err != nil {
		return j, err
	}
	if err := r.s.Events(ctx, Event{Phase: phase, Job: j}); err != nil {
		return j, err
	}
	runErr := r.produce(ctx, prod, &j, rate, done)
	// The job's state is stored even when ctx ended.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	switch {
	case runErr == nil:
		j.Status, phase = StatusFinished, "finished"
	case errors.Is(runErr, ErrCancelled):
		j.Status, phase, j.Detail = StatusCancelled, "cancelled", "cancelled by the operator"
	default:
		j.Status, phase, j.Detail = StatusFailed, "failed", runErr.Error()
	}
	if err := r.save(sctx, &j); err != nil {
		return j, errors.Join(runErr, err)
	}
	if err := r.s.Events(sctx, Event{Phase: phase, Job: j}); err != nil {
		return j, errors.Join(runErr, err)
	}
	return j, runErr
}

// committedAfterCursor reads the job's targets from its scan offsets to
// their last committed offset and returns the items found there: committed
// by an earlier run after its last stored cursor. Call it after the
// producer fenced the earlier runs, so nothing more of theirs commits.
func (r *Replayer) committedAfterCursor(ctx context.Context, j *Job) (map[uint64]bool, error) {
	done := map[uint64]bool{}
	if j.Status == StatusPlanned || len(j.scanFrom) == 0 {
		return done, nil
	}
	parts := map[string]map[int32]kgo.Offset{}
	left := map[string]int64{} // "topic/partition" → end
	var topics []string
	for k := range j.scanFrom {
		t, _, _ := cutPartition(k)
		if !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	ends, err := r.adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka: list end offsets of %v: %w", topics, err)
	}
	for k, from := range j.scanFrom {
		t, p, ok := cutPartition(k)
		if !ok {
			continue
		}
		end, found := ends.Lookup(t, p)
		if !found || end.Err != nil || end.Offset <= from {
			continue
		}
		if parts[t] == nil {
			parts[t] = map[int32]kgo.Offset{}
		}
		parts[t][p] = kgo.NewOffset().At(from)
		left[k] = end.Offset
	}
	if len(left) == 0 {
		return done, nil
	}
	cl, err := kgo.NewClient(append(slices.Clone(r.s.Kafka), kgo.ConsumePartitions(parts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers come back too: the last offset before
		// the end may be one, and reading stops on reaching the end.
		kgo.KeepControlRecords())...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	for len(left) > 0 {
		pctx, cancel := context.WithTimeout(ctx, r.reader.wait)
		fs := cl.PollRecords(pctx, 10_000)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = err
			}
		})
		if ferr != nil {
			return nil, fmt.Errorf("kafka: read the targets of %s back: %w", j.ID, ferr)
		}
		recs := fs.Records()
		if len(recs) == 0 {
			return nil, fmt.Errorf("kafka: the targets of %s returned nothing for %s before their committed end", j.ID, r.reader.wait)
		}
		for _, rec := range recs {
			k := tpKey(rec.Topic, rec.Partition)
			if job, seq, ok := JobSeq(rec); ok && job == j.ID && seq >= j.Cursor {
				done[seq] = true
			}
			if end, ok := left[k]; ok && rec.Offset+1 >= end {
				delete(left, k)
			}
			// scanFrom is left where it was: the records found here
			// have seqs at or past the cursor, and a run killed before
			// its cursor passes them must find them again.
		}
	}
	return done, nil
}

func cutPartition(k string) (string, int32, bool) {
	i := strings.LastIndexByte(k, '/')
	if i < 0 {
		return "", 0, false
	}
	p, err := strconv.ParseInt(k[i+1:], 10, 32)
	return k[:i], int32(p), err == nil
}

// batch is one batch of a job's items and their records read back.
type batch struct {
	items []chstore.ReplayItemRow
	got   []Got
	err   error
}

// prefetch reads the job's batches from from on — items from ClickHouse,
// records from Kafka — one ahead of the batch being produced, so reading
// overlaps producing and committing (docs/replay.md, "Speed"). It closes
// the channel after the last batch or an error.
func (r *Replayer) prefetch(ctx context.Context, j Job, from uint64) <-chan batch {
	out := make(chan batch, 1)
	go func() {
		defer close(out)
		for from < j.Planned {
			items, err := r.s.Store.ReplayItems(ctx, j.ID, from, r.cfg.BatchRecords)
			if err == nil && len(items) == 0 {
				err = fmt.Errorf("replay job %s: items from %d on are not stored (planned %d)", j.ID, from, j.Planned)
			}
			var got []Got
			if err == nil {
				ps := make([]Position, len(items))
				for i, it := range items {
					ps[i] = Position{it.Topic, it.Partition, it.Offset}
				}
				got, err = r.reader.read(ctx, ps)
			}
			select {
			case out <- batch{items: items, got: got, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
			from = items[len(items)-1].Seq + 1
		}
	}()
	return out
}

// cursorSaver stores a job's cursor after each commit in the background,
// the newest waiting one only: the cursor may lag Kafka, never lead it, so
// it need not be stored before the next batch starts.
type cursorSaver struct {
	r       *Replayer
	mu      sync.Mutex
	pending *Job
	err     error
	wake    chan struct{}
	done    chan struct{}
}

func (r *Replayer) startCursorSaver(ctx context.Context) *cursorSaver {
	c := &cursorSaver{r: r, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for range c.wake {
			c.mu.Lock()
			j := c.pending
			c.pending = nil
			c.mu.Unlock()
			if j == nil {
				continue
			}
			if err := r.save(ctx, j); err != nil {
				c.mu.Lock()
				if c.err == nil {
					c.err = err
				}
				c.mu.Unlock()
			}
		}
	}()
	return c
}

// store queues a copy of j to be stored, replacing one not yet stored,
// and returns the error of an earlier store.
func (c *cursorSaver) store(j Job) error {
	j.scanFrom = maps.Clone(j.scanFrom)
	c.mu.Lock()
	c.pending = &j
	err := c.err
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return err
}

// close stores what is queued, stops, and returns the first error.
func (c *cursorSaver) close() error {
	close(c.wake)
	<-c.done
	return c.err
}

// produce runs the job's batches from its cursor to its end.
func (r *Replayer) produce(ctx context.Context, prod *kgo.Client, j *Job, rate int, done map[uint64]bool) (err error) {
	stamp := Stamp{Job: j.ID, Operator: j.Actor}
	pace := pacer{rate: rate, start: time.Now()}
	// Every record of the job with a seq at or past the stored cursor lies
	// at or after scanFrom in its partition, or a resume would not find
	// it. Records of earlier runs (done) may lie before what this run
	// produces: scanFrom moves on only once the cursor passed them all.
	var lastDone uint64
	for seq := range done {
		lastDone = max(lastDone, seq+1)
	}
	reachedRun := map[string]int64{}
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	batches := r.prefetch(fctx, *j, j.Cursor)
	saver := r.startCursorSaver(context.WithoutCancel(ctx))
	defer func() {
		// The cursor of the last committed batch is stored before Run
		// stores the job's end.
		if serr := saver.close(); serr != nil && err == nil {
			err = serr
		}
	}()
	for j.Cursor < j.Planned {
		if ctx.Err() != nil {
			return ErrCancelled
		}
		var b batch
		select {
		case b = <-batches:
		case <-ctx.Done():
			return ErrCancelled
		}
		if b.err != nil {
			if ctx.Err() != nil {
				return ErrCancelled
			}
			return b.err
		}
		items, got := b.items, b.got
		if err := prod.BeginTransaction(); err != nil {
			return fmt.Errorf("kafka: begin transaction: %w", err)
		}
		var (
			mu       sync.Mutex
			firstErr error
			reached  = map[string]int64{}
			produced uint64
			// By target topic, for Settings.Committed.
			byTopic, goneByTopic = map[string]int{}, map[string]int{}
		)
		for i, it := range items {
			switch {
			case done[it.Seq]:
				produced++ // committed by a run that was killed before storing its cursor
				continue
			case got[i].Record == nil:
				j.Missing++
				goneByTopic[it.Target]++
				if r.s.Gone != nil {
					r.s.Gone(Missing{From: got[i].Pos, Reason: got[i].Gone})
				}
				continue
			}
			if err := pace.wait(ctx); err != nil {
				return r.abort(prod, ErrCancelled)
			}
			rec := stamp.replayed(got[i].Record, it.Seq, it.Target)
			from := got[i].Pos
			prod.Produce(ctx, rec, func(rec *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("produce item %d (%s) to %s: %w", it.Seq, from, rec.Topic, err)
					}
					return
				}
				k := tpKey(rec.Topic, rec.Partition)
				reached[k] = max(reached[k], rec.Offset+1)
			})
			produced++
			byTopic[it.Target]++
		}
		if err := prod.Flush(ctx); err != nil {
			return r.abort(prod, ErrCancelled)
		}
		if firstErr != nil {
			return r.abort(prod, firstErr)
		}
		if ctx.Err() != nil {
			return r.abort(prod, ErrCancelled)
		}
		if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
			// Committed or not: a resume tells, from the targets.
			return fmt.Errorf("kafka: commit the batch from item %d (resume the job to finish it): %w", j.Cursor, err)
		}
		j.Cursor = items[len(items)-1].Seq + 1
		for k, off := range reached {
			reachedRun[k] = max(reachedRun[k], off)
		}
		if j.Cursor >= lastDone {
			for k, off := range reachedRun {
				j.scanFrom[k] = max(j.scanFrom[k], off)
			}
		}
		j.Produced += produced
		if err := saver.store(*j); err != nil {
			return err
		}
		if r.s.Committed != nil {
			r.s.Committed(byTopic, goneByTopic)
		}
		if r.s.Progress != nil {
			r.s.Progress(*j)
		}
	}
	return nil
}

// abort aborts the open transaction and returns why.
func (r *Replayer) abort(prod *kgo.Client, why error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := prod.AbortBufferedRecords(ctx); err != nil {
		return errors.Join(why, fmt.Errorf("kafka: abort the batch: %w", err))
	}
	if err := prod.EndTransaction(ctx, kgo.TryAbort); err != nil {
		return errors.Join(why, fmt.Errorf("kafka: abort the batch: %w", err))
	}
	return why
}

// pacer spaces records to rate a second (0: no cap).
type pacer struct {
	rate  int
	start time.Time
	n     int64
}

func (p *pacer) wait(ctx context.Context) error {
	if p.rate <= 0 {
		return ctx.Err()
	}
	due := p.start.Add(time.Duration(p.n) * time.Second / time.Duration(p.rate))
	p.n++
	d := time.Until(due)
	if d < time.Millisecond {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
