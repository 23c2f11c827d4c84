package demo

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	contract "github.com/weft-sh/weft/internal/event"
)

// Batch is a planned history run: every record in produce order, and the
// manifest that describes it.
type Batch struct {
	// Records are in produce order: by produce time (event time, except
	// for redeliveries and out-of-order replays), then the DLQ copies of
	// PaymentFailed records, which here lack dlq-original-offset: the
	// generator adds it once the original's offset is known.
	Records  []*kgo.Record
	Manifest *Manifest
	ems      []*emission
}

// emission is one record to produce, and when.
type emission struct {
	rec    *kgo.Record
	format contract.Format
	at     time.Time // produce time: the sort key in history, the due time live
	ord    *order
	seq    int
	dlqOf  *emission // set on a DLQ copy: the record it copies
	offset int64     // set once produced
}

// order is one planned order.
type order struct {
	idx           int
	id            string
	kind          Kind   // "" when healthy
	stuck         string // stuck step, for KindStuck
	spec          spec
	traceID       string
	correlationID string
	facts         facts
	events        []*event
	emissions     []*emission
	fault         Fault
}

// planner turns a Config into orders.
type planner struct {
	cfg Config
	tag string // distinguishes runs with a different seed or Now in order ids
	tm  *timing
}

func newPlanner(cfg Config, tm *timing) *planner {
	h := fnv.New64a()
	_ = binary.Write(h, binary.BigEndian, cfg.Seed)
	_ = binary.Write(h, binary.BigEndian, cfg.Now.UnixMilli())
	return &planner{cfg: cfg, tag: fmt.Sprintf("%06x", h.Sum64()&0xffffff), tm: tm}
}

// orderRand is the random stream of order idx: independent of the others.
func orderRand(seed int64, idx int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15^uint64(idx)))
}

// Plan builds a history run without producing it: pure and deterministic
// (same Config, same records and manifest).
func Plan(cfg Config) (*Batch, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := newPlanner(cfg, historyTiming())
	m := newManifest(cfg.Seed, "history")
	m.Now = cfg.Now.UTC().Truncate(time.Millisecond)
	m.WindowStart = m.Now.Add(-cfg.History)
	var ems []*emission
	for idx, f := range p.assignFaults() {
		r := orderRand(cfg.Seed, idx)
		o := p.newOrder(idx, f.kind, f.stuck, r)
		start, err := p.historyStart(o, r)
		if err != nil {
			return nil, err
		}
		if err := p.finish(o, start, r); err != nil {
			return nil, err
		}
		m.add(o)
		for _, em := range o.emissions {
			m.count(em)
		}
		ems = append(ems, o.emissions...)
	}
	// DLQ copies go last: they are produced once their originals' offsets are known.
	slices.SortStableFunc(ems, func(a, b *emission) int {
		return cmp.Or(cmp.Compare(btoi(a.dlqOf != nil), btoi(b.dlqOf != nil)),
			a.at.Compare(b.at), cmp.Compare(a.ord.idx, b.ord.idx), cmp.Compare(a.seq, b.seq))
	})
	b := &Batch{Manifest: m, ems: ems, Records: make([]*kgo.Record, len(ems))}
	for i, em := range ems {
		b.Records[i] = em.rec
	}
	return b, nil
}

type assignment struct {
	kind  Kind
	stuck string
}

// assignFaults decides each history order's fault: exact counts per kind
// on shuffled orders, stuck steps round-robin from a shuffled start so any
// len(StuckSteps()) stuck orders cover every step.
func (p *planner) assignFaults() []assignment {
	r := rand.New(rand.NewPCG(uint64(p.cfg.Seed), 0xfa17))
	out := make([]assignment, p.cfg.Orders)
	i := 0
	counts := p.cfg.Faults.Counts(p.cfg.Orders)
	for _, k := range Kinds() {
		for range counts[k] {
			out[i].kind = k
			i++
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	order := slices.Clone(stuckSteps)
	r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	n := 0
	for i := range out {
		if out[i].kind == KindStuck {
			out[i].stuck = order[n%len(order)]
			n++
		}
	}
	return out
}

// chooseSpec picks a workflow variant fitting the fault.
func chooseSpec(kind Kind, stuck string, r *rand.Rand) spec {
	async := r.Float64() < 0.3
	retries := func() int { return []int{0, 0, 0, 1, 1, 2}[r.IntN(6)] }
	switch kind {
	case KindStuck:
		s := spec{async: async, out: outCompleted}
		if s.async {
			s.retries = retries()
		}
		switch stuck {
		case StepPaymentRequested:
			s = spec{async: true, out: outCompleted}
		case StepPaymentRetryScheduled:
			s = spec{async: true, retries: 1 + r.IntN(2), out: outCompleted}
		case StepPickupExpired:
			s.out = outExpired
		case StepPickedUp, StepPaymentCaptured:
		default:
			if r.Float64() < 0.2 {
				s.out = outExpired
			}
		}
		return s
	case KindRace:
		s := spec{async: async, out: outRaceCompleted}
		if r.IntN(2) == 0 {
			s.out = outRaceCancelled
		}
		return s
	case KindPaymentFailed:
		return spec{async: true, retries: maxRetries, out: outFailed}
	}
	// Healthy, lost, duplicate, out-of-order: a healthy variant.
	u := r.Float64()
	switch {
	case u < 0.55:
		return spec{out: outCompleted}
	case u < 0.75:
		return spec{async: true, retries: retries(), out: outCompleted}
	case u < 0.92:
		s := spec{async: async, out: outExpired}
		if async {
			s.retries = retries()
		}
		return s
	}
	return spec{async: true, out: outDeclined}
}

// newOrder lays out order idx: variant, chain, vectors, ids, and which
// event is lost or duplicated. Times come later (finish).
func (p *planner) newOrder(idx int, kind Kind, stuck string, r *rand.Rand) *order {
	o := &order{idx: idx, id: fmt.Sprintf("ord-%s-%05d", p.tag, idx+1), kind: kind, stuck: stuck}
	o.spec = chooseSpec(kind, stuck, r)
	o.events = buildChain(o.spec, p.tm, r)
	if kind == KindStuck {
		o.events, _ = truncateAt(o.events, stuck)
	}
	assignVectors(o.events)
	o.facts = newFacts(r)
	o.traceID = hexID(r, 16)
	o.correlationID = o.id
	if r.Float64() < 0.3 {
		o.correlationID = "chk_" + randAlnum(r, 12)
	}
	seen := map[string]int{}
	for _, e := range o.events {
		e.id, e.span = uuid(r), hexID(r, 8)
		seen[e.typ]++
		e.n = seen[e.typ]
	}
	switch kind {
	case KindLost:
		o.events[1+r.IntN(len(o.events)-2)].lost = true
	case KindDuplicate:
		o.events[r.IntN(len(o.events))].dup = true
	}
	return o
}

// historyStart places an order in the history window: a healthy (or
// non-stuck) order ends at least historyMargin before Now; a stuck order's
// last event lands 2.2–3×SLA before Now.
func (p *planner) historyStart(o *order, r *rand.Rand) (time.Time, error) {
	now := p.cfg.Now.UTC().Truncate(time.Millisecond)
	win := now.Add(-p.cfg.History)
	length := maxOffset(o.events)
	if o.kind == KindStuck {
		s := float64(sla(o.stuck))
		kmax := min(stuckAgeMax, float64(now.Sub(win)-length)/s)
		if kmax < stuckAgeMin {
			return time.Time{}, fmt.Errorf("demo: history %s too short for an order stuck in %s", p.cfg.History, o.stuck)
		}
		k := stuckAgeMin + r.Float64()*(kmax-stuckAgeMin)
		last := now.Add(-time.Duration(k * s)).Truncate(time.Millisecond)
		return last.Add(-length), nil
	}
	latest := now.Add(-length - historyMargin)
	if latest.Before(win) {
		return time.Time{}, fmt.Errorf("demo: history %s too short for a %s order", p.cfg.History, o.spec.path())
	}
	ms := r.Int64N(latest.Sub(win).Milliseconds() + 1)
	return win.Add(time.Duration(ms) * time.Millisecond).Truncate(time.Millisecond), nil
}

// finish gives the order its times, data and records, its emissions and
// its manifest fault.
func (p *planner) finish(o *order, start time.Time, r *rand.Rand) error {
	for _, e := range o.events {
		e.at = start.Add(e.off)
	}
	for _, e := range o.events {
		e.data = eventData(o, e)
		e.format = pickFormat(p.cfg.Encoding, r)
		rec, err := encodeEvent(o, e, e.format, r.IntN(2) == 0, p.cfg.Topics)
		if err != nil {
			return err
		}
		e.rec = rec
	}
	p.emit(o, r)
	o.fault = p.describeFault(o)
	return nil
}

// emit lists the order's records with their produce times.
func (p *planner) emit(o *order, r *rand.Rand) {
	var ems, main []*emission
	for _, e := range o.events {
		if e.lost {
			continue
		}
		em := &emission{rec: e.rec, format: e.format, at: e.at, ord: o}
		ems, main = append(ems, em), append(main, em)
		if e.dup {
			ems = append(ems, &emission{rec: cloneRecord(e.rec), format: e.format,
				at: e.at.Add(p.tm.pick(p.tm.redelivery, r)), ord: o})
		}
		if e.typ == PaymentFailed {
			ems = append(ems, &emission{rec: dlqCopy(e.rec, p.cfg.Topics), format: e.format,
				at: e.at.Add(time.Millisecond), ord: o, dlqOf: em})
		}
	}
	if o.kind == KindOutOfOrder {
		// Replayed late in one burst, shuffled; make sure two records on
		// the same topic (hence partition) are inverted.
		perm := r.Perm(len(main))
		if !sameTopicInversion(perm, main) {
			i, j := slices.Index(perm, 0), slices.Index(perm, len(main)-1)
			perm[i], perm[j] = perm[j], perm[i]
		}
		base := o.events[0].at
		for _, em := range main {
			base = maxTime(base, em.at)
		}
		for k, idx := range perm {
			main[idx].at = base.Add(time.Duration(k+1) * p.tm.burstGap)
		}
	}
	for i, em := range ems {
		em.seq = i
	}
	o.emissions = ems
}

// sameTopicInversion reports whether produced order perm (indexes into
// ems, which are in causal order) puts a later event before an earlier
// one of the same topic.
func sameTopicInversion(perm []int, ems []*emission) bool {
	for i := range perm {
		for j := i + 1; j < len(perm); j++ {
			if perm[i] > perm[j] && ems[perm[i]].rec.Topic == ems[perm[j]].rec.Topic {
				return true
			}
		}
	}
	return false
}

// lastEvent is the order's last produced event in event time.
func (o *order) lastEvent() *event {
	var last *event
	for _, e := range o.events {
		if !e.lost && (last == nil || !e.at.Before(last.at)) {
			last = e
		}
	}
	return last
}

// describeFault builds the manifest entry of the order's fault.
func (p *planner) describeFault(o *order) Fault {
	last := o.lastEvent()
	f := Fault{Kind: o.kind, OrderID: o.id, LastEventType: last.typ, LastEventAt: last.at}
	switch o.kind {
	case KindStuck:
		f.Step, f.EventType, f.EventID = o.stuck, last.typ, last.id
		f.Detail = fmt.Sprintf("no event after %s at %s; %s SLA is %s", last.typ, ts(last.at), o.stuck, sla(o.stuck))
	case KindLost:
		for i, e := range o.events {
			if !e.lost {
				continue
			}
			f.Step, f.EventType, f.EventID = StepOf(e.typ), e.typ, e.id
			var by []string
			for _, x := range o.events {
				if x.cause == i {
					by = append(by, x.typ)
				}
			}
			f.Detail = fmt.Sprintf("%s never produced; %s names it as cause", e.typ, strings.Join(by, ", "))
		}
	case KindDuplicate:
		for _, e := range o.events {
			if e.dup {
				f.Step, f.EventType, f.EventID = StepOf(e.typ), e.typ, e.id
				f.Detail = fmt.Sprintf("%s produced twice, byte-identical (redelivery)", e.typ)
			}
		}
	case KindOutOfOrder:
		byAt := slices.Clone(o.emissions)
		slices.SortStableFunc(byAt, func(a, b *emission) int { return a.at.Compare(b.at) })
		types := make([]string, len(byAt))
		for i, em := range byAt {
			types[i] = typeOf(o, em)
		}
		f.Detail = "produced as: " + strings.Join(types, ", ")
	case KindRace:
		var pu, pe *event
		for _, e := range o.events {
			switch e.typ {
			case PickedUp:
				pu = e
			case PickupExpired:
				pe = e
			}
		}
		loser := pe
		if o.spec.out == outRaceCancelled {
			loser = pu
		}
		f.Step, f.EventType, f.EventID = StepCustomerNotified, loser.typ, loser.id
		f.Detail = fmt.Sprintf("PickedUp %s (caused by CustomerNotified) and PickupExpired %s (caused by ReadyForPickup) both produced, version vectors incomparable; order ended with %s",
			pu.id, pe.id, last.typ)
	case KindPaymentFailed:
		for _, e := range o.events {
			if e.typ == PaymentFailed {
				f.Step, f.EventType, f.EventID = StepPaymentFailed, e.typ, e.id
				f.Detail = fmt.Sprintf("payment failed after %d attempts (%d retries); copy on %s; order cancelled",
					e.attempt, e.attempt-1, p.cfg.Topics.Name(TopicPaymentsDLQ))
			}
		}
	}
	return f
}

func typeOf(o *order, em *emission) string {
	for _, e := range o.events {
		if e.rec == em.rec {
			return e.typ
		}
	}
	return "?"
}

// summary is the order's manifest line.
func (o *order) summary() OrderSummary {
	last := o.lastEvent()
	s := OrderSummary{
		ID: o.id, Path: o.spec.path(), Fault: o.kind, TraceID: o.traceID, CorrelationID: o.correlationID,
		Records: len(o.emissions), FirstEventAt: o.events[0].at,
		LastEventAt: last.at, LastEventType: last.typ, Terminal: IsTerminal(last.typ),
	}
	for _, e := range o.events {
		if !e.lost {
			s.Events++
		}
	}
	return s
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func hexID(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return fmt.Sprintf("%x", b)
}

// uuid is a random (version 4) UUID drawn from r.
func uuid(r *rand.Rand) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], r.Uint64())
	binary.BigEndian.PutUint64(b[8:], r.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
