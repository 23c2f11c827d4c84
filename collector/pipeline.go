package collector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The tap is a two-batch pipeline: Run polls and decodes records into one
// batch while storeLoop inserts the previous one into ClickHouse and then
// commits exactly that batch's offsets. Two batches exist, no more: when
// both are taken (one being stored, one full and waiting) Run stops polling
// until the first is stored, so ClickHouse's pace bounds memory.
//
// Rebalances are blocked from the first poll (BlockRebalanceOnPoll). When
// one waits (OnPartitionsCallbackBlocked) Run hands over what it holds,
// waits until every batch is stored and committed, and only then allows
// it: no commit ever names a partition the tap no longer owns. With
// nothing in flight at a flush point it allows rebalances right away.
const pipelineDepth = 2

// pipeline passes batches between Run and storeLoop. Its fields other
// than the channels belong to Run.
type pipeline struct {
	full chan *batch // to store, in poll order
	free chan *batch // stored and committed, back to Run
	// failed is closed when storeLoop stopped for good on err (an audit
	// log that cannot be resumed without forking it): Run returns err.
	failed chan struct{}
	err    error

	spares   []*batch // empty batches Run holds
	inFlight int      // batches handed to storeLoop and not back yet
}

func newPipeline() *pipeline {
	p := &pipeline{full: make(chan *batch, pipelineDepth), free: make(chan *batch, pipelineDepth), failed: make(chan struct{})}
	for i := 0; i < pipelineDepth; i++ {
		p.spares = append(p.spares, newBatch())
	}
	return p
}

// hand passes a filled batch to storeLoop. It never blocks: the channel
// has room for every batch.
func (p *pipeline) hand(b *batch) {
	p.full <- b
	p.inFlight++
}

// take returns an empty batch, waiting for storeLoop to hand one back when
// every batch is taken; nil when ctx ends first.
func (p *pipeline) take(ctx context.Context) *batch {
	if len(p.spares) == 0 && !p.wait(ctx) {
		return nil
	}
	b := p.spares[len(p.spares)-1]
	p.spares = p.spares[:len(p.spares)-1]
	return b
}

// wait moves the next batch storeLoop hands back to the spares.
func (p *pipeline) wait(ctx context.Context) bool {
	select {
	case b := <-p.free:
		p.spares = append(p.spares, b)
		p.inFlight--
		return true
	case <-p.failed:
		return false
	case <-ctx.Done():
		return false
	}
}

// fail stops the pipeline for good: storeLoop's last act.
func (p *pipeline) fail(err error) {
	p.err = err
	close(p.failed)
}

// failure is the error that stopped storeLoop for good, or nil.
func (p *pipeline) failure() error {
	select {
	case <-p.failed:
		return p.err
	default:
		return nil
	}
}

// drained collects the batches already handed back and reports whether
// none is still in flight; with wait, it first waits for all of them.
func (p *pipeline) drained(ctx context.Context, wait bool) bool {
	for p.inFlight > 0 {
		select {
		case b := <-p.free:
			p.spares = append(p.spares, b)
			p.inFlight--
			continue
		default:
		}
		if !wait || !p.wait(ctx) {
			return false
		}
	}
	return true
}

// Run consumes until ctx ends. Decode failures are quarantined; insert
// failures are retried with backoff and never skip records: offsets are
// committed only after the batch is stored. When ctx ends, Run stores and
// commits what it has polled, for up to Batch.DrainTimeout, and returns.
// With the audit trail on, a partition's log that cannot be resumed
// without forking it stops the tap: Run returns ErrAuditLogDiverged,
// wrapped with the log's name.
func (c *Collector) Run(ctx context.Context) error {
	if c.client == nil {
		return errors.New("collector: Run before Start")
	}
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("collector: Run called twice")
	}
	// A group leave waits for an allowed rebalance: never exit holding one.
	defer c.client.AllowRebalance()
	// Fenced (groupleave.go): stop polling and waiting at once.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.fenced:
			cancel()
		case <-ctx.Done():
		}
	}()

	// storeLoop outlives ctx, so a graceful stop stores what was polled;
	// drain bounds how long.
	storeCtx, stopStoring := context.WithCancel(context.WithoutCancel(ctx))
	p := newPipeline()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.storeLoop(storeCtx, p) }()
	defer wg.Wait() // after stopStoring (deferred later, runs first)
	defer stopStoring()
	stopCheckpoints := func() {}
	if c.audit != nil {
		stopCheckpoints = c.audit.checkpoints(storeCtx)
	}
	defer stopCheckpoints()

	cur := p.take(ctx)
	deadline := time.Now().Add(c.cfg.Batch.FlushInterval)
	for ctx.Err() == nil && p.failure() == nil {
		pollCtx, pollCancel := context.WithDeadline(ctx, deadline)
		fetches := c.client.PollRecords(pollCtx, c.cfg.Batch.MaxRecords-cur.len())
		pollCancel()
		if c.isFenced() {
			return c.fencedError() // what is not committed is read again by the process that holds the id
		}
		if fetches.IsClientClosed() {
			return nil
		}
		c.noteFetchErrors(fetches)
		c.backlog.note(fetches, time.Now())
		if c.audit != nil {
			c.audit.noteFetches(cur, fetches, time.Now())
		}
		fetches.EachRecord(func(r *kgo.Record) { c.add(cur, r) })

		wanted := c.rebalanceWanted.Load()
		if cur.len() < c.cfg.Batch.MaxRecords && time.Now().Before(deadline) && !wanted {
			continue
		}
		if cur.len() > 0 || len(cur.auditTruncs) > 0 { // a truncation is stored before partitions may move
			p.hand(cur)
			if cur = p.take(ctx); cur == nil {
				break // stopping while every batch is taken
			}
		}
		if wanted {
			c.rebalanceWanted.Store(false) // before allowing: a later signal is kept
		}
		// Every batch stored and committed before partitions may move; a
		// waiting rebalance is worth the wait, otherwise allow only when
		// nothing is in flight anyway.
		if p.drained(ctx, wanted) {
			c.client.AllowRebalance()
		} else if wanted {
			break // stopping while waiting to allow the rebalance
		}
		deadline = time.Now().Add(c.cfg.Batch.FlushInterval)
	}
	if err := p.failure(); err != nil {
		return err // what is not stored is read again on the next start
	}
	if c.isFenced() {
		return c.fencedError()
	}
	c.drain(ctx, p, cur)
	if c.audit != nil {
		stopCheckpoints()
		c.audit.flush(context.WithoutCancel(ctx))
	}
	return nil
}

// drain is a graceful stop's last step: it hands over the batch being
// filled and waits, at most Batch.DrainTimeout, until every batch is
// stored and committed. Partitions cannot move meanwhile (rebalances stay
// blocked until Run returns), so every commit names a partition the tap
// owns. What is not stored in time is read again on the next start.
func (c *Collector) drain(ctx context.Context, p *pipeline, cur *batch) {
	if cur != nil && (cur.len() > 0 || len(cur.auditTruncs) > 0) {
		p.hand(cur)
	}
	if p.inFlight == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Batch.DrainTimeout)
	defer cancel()
	if !p.drained(dctx, true) {
		c.log.Warn().Int("batches", p.inFlight).Dur("drain_timeout", c.cfg.Batch.DrainTimeout).
			Msg("stopping with batches not stored; they are read again on the next start")
		return
	}
	c.log.Info().Msg("buffered records stored and committed")
}

// blockedHold is how long a blocking fetch error (a missing ACL) keeps the
// tap not ready after the last poll that returned it, when no record came.
const blockedHold = time.Minute

// noteFetchErrors logs fetch errors and keeps the one that blocks the tap
// (a missing ACL) for Ready, until a clean poll.
func (c *Collector) noteFetchErrors(fetches kgo.Fetches) {
	blocked, failed := "", false
	fetches.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		failed = true
		if errors.Is(err, kerr.UnknownTopicID) && topic != "" {
			// franz-go refuses a topic's new instance for good
			// (docs/runbook.md): said once, and kept for Ready.
			if _, seen := c.recreated.LoadOrStore(topic, struct{}{}); !seen {
				c.log.Error().Str("topic", topic).Int32("partition", p).
					Msg("topic deleted and recreated while the tap read it (UNKNOWN_TOPIC_ID): the tap reads only the first instance; the new one's records are not stored until an operator acts (docs/runbook.md)")
				c.metrics.recreated.Set(float64(len(c.recreatedTopics())))
			}
			return
		}
		c.log.Warn().Err(err).Str("topic", topic).Int32("partition", p).Msg("fetch error")
		if blocking(err) {
			blocked = err.Error()
			if topic != "" {
				blocked = topic + ": " + blocked
			}
		}
	})
	// A refused group join does not come back on every poll: polls between
	// return nothing at all. The error stands until records arrive, or until
	// blockedHold passed without it (a fixed ACL on a quiet topic).
	now := time.Now()
	if blocked != "" {
		c.fetchErr.Store(&blocked)
		c.fetchErrAt.Store(now.UnixNano())
	} else if fetches.NumRecords() > 0 || !failed && now.Sub(time.Unix(0, c.fetchErrAt.Load())) > blockedHold {
		c.fetchErr.Store(nil)
	}
}

func (c *Collector) add(b *batch, r *kgo.Record) {
	c.consumed.Add(1)
	c.consumedBy.add(r.Topic, 1)
	b.note(r)
	e, err := c.decoder.Decode(r)
	if err != nil {
		b.quarantine = append(b.quarantine, c.decoder.Quarantine(r, err.Error()))
		if c.audit != nil {
			c.audit.add(b, r, nil, &b.quarantine[len(b.quarantine)-1])
		}
		return
	}
	b.events = append(b.events, e)
	if c.audit != nil {
		c.audit.add(b, r, &b.events[len(b.events)-1], nil)
	}
}

// storeLoop stores and commits the batches Run hands over, in order, and
// hands each back empty. It returns when ctx ends.
func (c *Collector) storeLoop(ctx context.Context, p *pipeline) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-p.full:
			if err := c.flush(ctx, b); err != nil {
				if ctx.Err() == nil {
					p.fail(err)
				}
				return // the batch is neither stored for sure nor committed
			}
			p.free <- b
		}
	}
}

// flush stores the batch, retrying until it succeeds, ctx ends or an
// audit log turns out not to be resumable (ErrAuditLogDiverged), commits
// its offsets and empties it.
func (c *Collector) flush(ctx context.Context, b *batch) error {
	// Marked before insert stamps the rows, cleared once they are stored;
	// a retry may be deduplicated into the first attempt's rows, so the
	// mark stays from the first attempt.
	c.storingSince.Store(time.Now().UnixNano())
	defer c.storingSince.Store(0)
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := c.insert(ctx, b)
		if err == nil {
			c.metrics.insertTime.Observe(time.Since(start).Seconds())
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrAuditLogDiverged) {
			return err // never retried: resuming would fork the log
		}
		c.metrics.insertErrs.Inc()
		msg := err.Error()
		c.lastErr.Store(&msg)
		c.log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", backoff).Msg("clickhouse insert failed; will retry the same batch")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	c.lastErr.Store(nil)
	if b.len() > 0 {
		c.metrics.lastStored.Set(float64(c.clock.Now().UnixNano()) / 1e9)
	}
	c.metrics.batchSize.Observe(float64(b.len()))
	addPerTopic(c.metrics.stored, len(b.events), func(i int) string { return b.events[i].Topic })
	addPerTopic(c.metrics.quarantined, len(b.quarantine), func(i int) string { return b.quarantine[i].Topic })
	c.stored.Add(int64(len(b.events)))
	c.quarantined.Add(int64(len(b.quarantine)))
	if err := c.commit(ctx, b.offsets); errors.Is(err, kerr.FencedInstanceID) {
		c.fence() // another process took the instance id over: Run returns a FencedError
	} else if err != nil {
		// Not fatal: the records are stored; a redelivery collapses on
		// (topic, partition, offset).
		c.log.Warn().Err(err).Msg("offset commit failed; records may be redelivered and deduplicated")
	}
	b.reset()
	return nil
}

// commit commits exactly offsets (not whatever was polled since), and
// returns the first error of the request or of any partition.
func (c *Collector) commit(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) error {
	var rerr error
	c.client.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			rerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && rerr == nil {
					rerr = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	return rerr
}

// insert stores the batch. Every attempt for one batch carries the same
// deduplication token, so an attempt that reached ClickHouse although it
// reported an error is not stored twice by the next. With the audit trail
// on, the batch's leaves are staged once (the first attempt, while its
// rows are inserted) and stored after the rows, and only then do the
// partitions' logs move on (docs/audit.md, "How the tap keeps the logs
// whole").
func (c *Collector) insert(ctx context.Context, b *batch) error {
	now := time.Now().UTC()
	token := b.token()
	var staged chan error
	if c.audit != nil && b.auditStage == nil {
		if b.auditErr != nil {
			return b.auditErr // a row over the encoding's limits: store nothing, never skip its leaf silently
		}
		// Staging is CPU work on the batch's own leaves and the logs (and,
		// for a partition first seen, a read of its stored state): done
		// beside the rows' inserts, which mostly wait on ClickHouse.
		staged = make(chan error, 1)
		go func() {
			st, err := c.audit.stage(ctx, b)
			b.auditStage = st
			staged <- err
		}()
	}
	err := c.store.InsertQuarantine(ctx, b.quarantine, now, token+":q")
	if err == nil {
		err = c.store.InsertEvents(ctx, b.events, now, token+":e")
	}
	if staged != nil {
		err = errors.Join(err, <-staged) // a failed stage is nil: the next attempt stages again
	}
	if err != nil || c.audit == nil {
		return err
	}
	if err := c.checkAuditLogs(ctx, b); err != nil {
		return err
	}
	if err := c.store.InsertAuditLeaves(ctx, b.auditStage.rows, now, auditToken(token, b.auditStage)); err != nil {
		return err
	}
	c.audit.stored(b.auditStage)
	return nil
}
