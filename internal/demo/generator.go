package demo

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Generator produces demo traffic to Kafka: a history batch, then live
// orders. It is not safe for concurrent use.
type Generator struct {
	cfg      Config
	client   *kgo.Client
	log      zerolog.Logger
	liveNext int // live orders started so far, across RunLive calls
}

// New returns a Generator for a valid config. It does no I/O.
func New(cfg Config, client *kgo.Client, log zerolog.Logger) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		return nil, errors.New("demo: nil Kafka client")
	}
	return &Generator{cfg: cfg, client: client, log: log.With().Str("component", "demo").Logger()}, nil
}

// Config returns the generator's config.
func (g *Generator) Config() Config { return g.cfg }

// EnsureTopics creates whichever of the seven topics are missing:
// partitions each, except the DLQ which gets one; replication is the
// broker's default. Topics that exist are left alone, so it is idempotent.
func (g *Generator) EnsureTopics(ctx context.Context, admin *kadm.Client, partitions int32) error {
	if partitions <= 0 {
		return fmt.Errorf("demo: partitions must be positive, got %d", partitions)
	}
	all := g.cfg.Topics.All()
	existing, err := admin.ListTopics(ctx, all...)
	if err != nil {
		return fmt.Errorf("demo: list topics: %w", err)
	}
	dlq := g.cfg.Topics.Name(TopicPaymentsDLQ)
	var errs []error
	for _, t := range all {
		if existing.Has(t) {
			continue
		}
		n := partitions
		if t == dlq {
			n = 1
		}
		resp, err := admin.CreateTopic(ctx, n, -1, nil, t)
		switch {
		case errors.Is(err, kerr.TopicAlreadyExists):
		case err != nil:
			errs = append(errs, fmt.Errorf("demo: create topic %s: %w", t, err))
		default:
			g.log.Info().Str("topic", t).Int32("partitions", resp.NumPartitions).Msg("created topic")
		}
	}
	return errors.Join(errs...)
}

// RunHistory produces the planned history (see Plan), flushes, and
// returns its manifest. DLQ copies are produced last, once the offsets of
// their originals are known.
func (g *Generator) RunHistory(ctx context.Context) (*Manifest, error) {
	b, err := Plan(g.cfg)
	if err != nil {
		return nil, err
	}
	g.log.Info().Int("orders", g.cfg.Orders).Int("records", len(b.Records)).
		Time("now", b.Manifest.Now).Dur("history", g.cfg.History).Msg("producing history")
	var (
		mu       sync.Mutex
		firstErr error
		dlqs     []*emission
	)
	promise := func(em *emission) func(*kgo.Record, error) {
		return func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("demo: produce to %s: %w", r.Topic, err)
			}
			em.offset = r.Offset
		}
	}
	check := func() error {
		if err := g.client.Flush(ctx); err != nil {
			return fmt.Errorf("demo: flush: %w", err)
		}
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}
	for _, em := range b.ems {
		if em.dlqOf != nil {
			dlqs = append(dlqs, em)
			continue
		}
		g.client.Produce(ctx, em.rec, promise(em))
	}
	if err := check(); err != nil {
		return nil, err
	}
	for _, em := range dlqs {
		mu.Lock()
		em.rec = withOffset(em.rec, em.dlqOf.offset)
		mu.Unlock()
		g.client.Produce(ctx, em.rec, promise(em))
	}
	if err := check(); err != nil {
		return nil, err
	}
	g.log.Info().Str("summary", b.Manifest.Summary()).Msg("history produced")
	return b.Manifest, nil
}

// RunLive produces new orders at Live.Rate per second, event time = wall
// clock, steps Live.StepDelayMin..Max apart, with faults drawn at the
// configured mix (a count share counts as count/Orders). It runs until ctx
// is cancelled, or until Live.MaxOrders orders are fully produced.
//
// onFault (may be nil) is called, from RunLive's goroutine, for each
// faulty order once all its records are acknowledged. The returned
// manifest lists the live orders; those cut short by cancellation are in
// Interrupted. Cancellation is a normal stop, not an error.
func (g *Generator) RunLive(ctx context.Context, onFault func(Fault)) (*Manifest, error) {
	lc := g.cfg.Live
	if lc.Rate <= 0 {
		return nil, errors.New("demo: live mode is disabled (live.rate is 0)")
	}
	p := newPlanner(g.cfg, liveTiming(lc.StepDelayMin, lc.StepDelayMax))
	fr := rand.New(rand.NewPCG(uint64(g.cfg.Seed), 0x11fe+uint64(g.liveNext)))
	stuckOrder := slices.Clone(stuckSteps)
	fr.Shuffle(len(stuckOrder), func(i, j int) { stuckOrder[i], stuckOrder[j] = stuckOrder[j], stuckOrder[i] })
	m := newManifest(g.cfg.Seed, "live")
	every := time.Duration(float64(time.Second) / lc.Rate)
	pctx := context.WithoutCancel(ctx)

	var (
		q        emHeap
		acks     ackQueue
		pending  = map[*order]int{}
		acked    = map[*emission]bool{}
		parked   = map[*emission]*emission{} // original → its DLQ copy, due before the original was acked
		started  int
		nStuck   int
		firstErr error
	)
	acks.notify = make(chan struct{}, 1)
	produce := func(em *emission) {
		g.client.Produce(pctx, em.rec, func(r *kgo.Record, err error) { acks.push(ack{em, r.Offset, err}) })
	}
	handleAcks := func(final bool) {
		for _, a := range acks.drain() {
			if a.err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("demo: produce to %s: %w", a.em.rec.Topic, a.err)
				}
				continue
			}
			a.em.offset, acked[a.em] = a.offset, true
			m.count(a.em)
			if d, ok := parked[a.em]; ok && !final {
				delete(parked, a.em)
				d.rec = withOffset(d.rec, a.offset)
				produce(d)
			}
			o := a.em.ord
			if pending[o]--; pending[o] == 0 {
				delete(pending, o)
				m.add(o)
				if o.kind != "" && onFault != nil {
					onFault(o.fault)
				}
			}
		}
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	nextOrder := time.Now()
	for firstErr == nil && ctx.Err() == nil {
		handleAcks(false)
		done := lc.MaxOrders > 0 && started >= lc.MaxOrders
		if done && len(pending) == 0 {
			break
		}
		now := time.Now()
		if !done && !now.Before(nextOrder) {
			kind, stuck := g.liveFault(fr, stuckOrder, &nStuck)
			o, err := g.liveOrder(p, kind, stuck, now)
			if err != nil {
				firstErr = err
				break
			}
			for _, em := range o.emissions {
				heap.Push(&q, em)
			}
			pending[o] = len(o.emissions)
			started++
			nextOrder = nextOrder.Add(every)
		}
		for q.Len() > 0 && !q[0].at.After(now) {
			em := heap.Pop(&q).(*emission)
			switch {
			case em.dlqOf == nil:
				produce(em)
			case acked[em.dlqOf]:
				em.rec = withOffset(em.rec, em.dlqOf.offset)
				produce(em)
			default:
				parked[em.dlqOf] = em
			}
		}
		wake := now.Add(time.Hour)
		if !done {
			wake = nextOrder
		}
		if q.Len() > 0 && q[0].at.Before(wake) {
			wake = q[0].at
		}
		timer.Reset(time.Until(wake))
		select {
		case <-ctx.Done():
		case <-timer.C:
		case <-acks.notify:
		}
	}
	fctx, cancel := context.WithTimeout(pctx, 10*time.Second)
	defer cancel()
	if err := g.client.Flush(fctx); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("demo: flush: %w", err)
	}
	handleAcks(true)
	var cut []*order
	for o := range pending {
		cut = append(cut, o)
	}
	slices.SortFunc(cut, func(a, b *order) int { return a.idx - b.idx })
	for _, o := range cut {
		m.Interrupted = append(m.Interrupted, o.id)
	}
	g.log.Info().Str("summary", m.Summary()).Msg("live stopped")
	return m, firstErr
}

// liveFault draws the fault of the next live order.
func (g *Generator) liveFault(r *rand.Rand, stuckOrder []string, nStuck *int) (Kind, string) {
	u := r.Float64()
	for _, k := range Kinds() {
		u -= g.cfg.Faults.probability(k, g.cfg.Orders)
		if u < 0 {
			if k != KindStuck {
				return k, ""
			}
			s := stuckOrder[*nStuck%len(stuckOrder)]
			*nStuck++
			return k, s
		}
	}
	return "", ""
}

// liveOrder plans the next live order, starting now.
func (g *Generator) liveOrder(p *planner, kind Kind, stuck string, now time.Time) (*order, error) {
	idx := g.cfg.Orders + g.liveNext
	g.liveNext++
	r := orderRand(g.cfg.Seed, idx)
	o := p.newOrder(idx, kind, stuck, r)
	if err := p.finish(o, now.UTC().Truncate(time.Millisecond), r); err != nil {
		return nil, err
	}
	return o, nil
}

// ack is a produce result, handed from a promise to the live loop.
type ack struct {
	em     *emission
	offset int64
	err    error
}

// ackQueue passes acks from kgo promises (which must not block) to the loop.
type ackQueue struct {
	mu     sync.Mutex
	acks   []ack
	notify chan struct{}
}

func (q *ackQueue) push(a ack) {
	q.mu.Lock()
	q.acks = append(q.acks, a)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *ackQueue) drain() []ack {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.acks
	q.acks = nil
	return out
}

// emHeap orders emissions by due time.
type emHeap []*emission

func (h emHeap) Len() int { return len(h) }
func (h emHeap) Less(i, j int) bool {
	if c := h[i].at.Compare(h[j].at); c != 0 {
		return c < 0
	}
	if h[i].ord.idx != h[j].ord.idx {
		return h[i].ord.idx < h[j].ord.idx
	}
	return h[i].seq < h[j].seq
}
func (h emHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *emHeap) Push(x any)   { *h = append(*h, x.(*emission)) }
func (h *emHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
