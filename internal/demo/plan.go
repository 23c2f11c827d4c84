package demo

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
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
	// undecodable marks a record weft cannot decode (PersonalData.Undecodable).
	undecodable bool
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
	pii           orderPII
	// sparse are the services that publish sparse events of this order
	// (EncodingMix.Sparse, when its fault allows).
	sparse []string
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
	var (
		ems    []*emission
		orders []*order
	)
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
		orders = append(orders, o)
	}
	if n := cfg.PersonalData.Undecodable; n > 0 && len(orders) > 0 {
		// Each borrows the personal data of an order, at a time of its life.
		r := rand.New(rand.NewPCG(uint64(cfg.Seed), 0xbad))
		for i := range n {
			o := orders[r.IntN(len(orders))]
			at := o.events[0].at.Add(time.Duration(r.Int64N(int64(maxOffset(o.events)) + 1))).Truncate(time.Millisecond)
			em := undecodable(o, i, at, cfg.Topics)
			m.count(em)
			ems = append(ems, em)
		}
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
	case KindCancelRace:
		s := spec{async: async, out: outCancelRace}
		if async {
			s.retries = retries()
		}
		return s
	case KindMissingCompensation, KindDivergence:
		s := spec{async: async, out: outUnvoided}
		if kind == KindDivergence {
			s.out = outDiverged
		}
		if async {
			s.retries = retries()
		}
		return s
	}
	// Healthy, lost, duplicate, out-of-order, orphan, causality violation,
	// conflicting duplicate: a healthy variant.
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
// event the fault alters. Times come later (finish).
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
		pick(r, lostCandidates(o.events)).lost = true
	case KindDuplicate:
		o.events[r.IntN(len(o.events))].dup = true
	case KindOrphan:
		// Any event but the root: it names a cause no event has.
		o.events[1+r.IntN(len(o.events)-1)].fakeCause = uuid(r)
	case KindCausalityViolation:
		e := pick(r, causalityCandidates(o.events))
		c := o.events[e.cause]
		svc := serviceOf(c.typ)
		e.sentVV = maps.Clone(e.vv)
		e.sentVV[svc] = c.vv[svc] - 1
	case KindConflictingDuplicate:
		var cands []*event
		for _, e := range o.events {
			if hasAmount(e.typ) && !IsTerminal(e.typ) {
				cands = append(cands, e)
			}
		}
		pick(r, cands).conflict = 1 + r.Int64N(2000)
	}
	return o
}

// pick draws one of evs; evs is never empty for the variants a fault uses
// (the tests prove it over every variant).
func pick(r *rand.Rand, evs []*event) *event {
	if len(evs) == 0 {
		panic("demo: no event fits the fault")
	}
	return evs[r.IntN(len(evs))]
}

// hasChild reports whether a later event names evs[i] as its cause.
func hasChild(evs []*event, i int) bool {
	return slices.ContainsFunc(evs, func(x *event) bool { return x.cause == i })
}

// lostCandidates are the events a lost fault may drop: not the root, the
// cause of a later event (whose vector then carries the lost event's
// counter, a gap in that service's counters), and not an event a workflow
// invariant requires of the order once terminal, so that the gap is the
// order's only finding.
func lostCandidates(evs []*event) []*event {
	var out []*event
	for i, e := range evs {
		switch e.typ {
		case PickedUp, PaymentCaptured, InventoryReleased, PaymentVoided:
			continue
		}
		if i > 0 && hasChild(evs, i) {
			out = append(out, e)
		}
	}
	return out
}

// causalityCandidates are the events whose vector a causality_violation
// may lower: e of another service than its cause c, c not the first event
// of its service (so the lowered entry is still a counter that service's
// events carry), and e the cause of a later event (which derives its
// vector from e's true vector and so dominates both e and c).
func causalityCandidates(evs []*event) []*event {
	var out []*event
	for i, e := range evs {
		if e.cause < 0 || e.sentVV != nil || len(e.also) > 0 {
			continue
		}
		c := evs[e.cause]
		svc := serviceOf(c.typ)
		if svc != serviceOf(e.typ) && c.vv[svc] >= 2 && hasChild(evs, i) {
			out = append(out, e)
		}
	}
	return out
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
	o.pii = newOrderPII(p.cfg.PersonalData, p.cfg.Seed, o.idx)
	if o.pii.keyedByEmail {
		o.correlationID = "session:" + o.facts.email // the shop's checkout session, named by the customer
	}
	if sparseFault(o.kind) {
		o.sparse = p.cfg.Encoding.Sparse
	}
	for _, e := range o.events {
		e.data = eventData(o, e)
		addPersonalData(o, e, e.data)
		e.format = pickFormat(p.cfg.Encoding, r)
		e.ext = r.IntN(2) == 0
		if slices.Contains(o.sparse, serviceOf(e.typ)) {
			e.format, e.sparse = contract.FormatJSON, true
		}
		rec, err := encodeEvent(o, e, e.data, &p.cfg)
		if err != nil {
			return err
		}
		e.rec = rec
		if e.conflict != 0 {
			if e.conflictRec, err = encodeEvent(o, e, conflictingData(o, e), &p.cfg); err != nil {
				return err
			}
		}
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
		if e.conflictRec != nil {
			ems = append(ems, &emission{rec: e.conflictRec, format: e.format,
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
		pu, pe := o.last(PickedUp), o.last(PickupExpired)
		loser := pe
		if o.spec.out == outRaceCancelled {
			loser = pu
		}
		f.Step, f.EventType, f.EventID = StepCustomerNotified, loser.typ, loser.id
		f.Detail = fmt.Sprintf("PickedUp %s (caused by CustomerNotified) and PickupExpired %s (caused by ReadyForPickup) both produced, version vectors incomparable; the next event merges both; order ended with %s",
			pu.id, pe.id, last.typ)
	case KindPaymentFailed:
		for _, e := range o.events {
			if e.typ == PaymentFailed {
				f.Step, f.EventType, f.EventID = StepPaymentFailed, e.typ, e.id
				f.Detail = fmt.Sprintf("payment failed after %d attempts (%d retries); copy on %s; order cancelled",
					e.attempt, e.attempt-1, p.cfg.Topics.Name(TopicPaymentsDLQ))
			}
		}
	case KindOrphan:
		for i, e := range o.events {
			if e.fakeCause != "" {
				f.Step, f.EventType, f.EventID, f.CausationID = StepOf(e.typ), e.typ, e.id, e.fakeCause
				c := o.events[e.cause]
				f.Detail = fmt.Sprintf("%s (event %d) names cause %s, which no event has; its vector %s derives from its real predecessor %s %s",
					e.typ, i+1, e.fakeCause, vvString(e.vv), c.typ, c.id)
			}
		}
	case KindCausalityViolation:
		for _, e := range o.events {
			if e.sentVV != nil {
				c := o.events[e.cause]
				svc := serviceOf(c.typ)
				f.Step, f.EventType, f.EventID, f.CausationID = StepOf(e.typ), e.typ, e.id, c.id
				f.Detail = fmt.Sprintf("%s names %s %s as cause, but its vector %s does not dominate the cause's %s: its %s entry is %d, not %d",
					e.typ, c.typ, c.id, vvString(e.sentVV), vvString(c.vv), svc, e.sentVV[svc], e.vv[svc])
			}
		}
	case KindConflictingDuplicate:
		for _, e := range o.events {
			if e.conflictRec != nil {
				f.Step, f.EventType, f.EventID = StepOf(e.typ), e.typ, e.id
				f.Detail = fmt.Sprintf("%s produced twice with event id %s and idempotency key %s: amount %.2f, then %.2f",
					e.typ, e.id, idempotencyKey(o, e), money(o.facts.total), money(o.facts.total+e.conflict))
			}
		}
	case KindMissingCompensation:
		auth, rel, canc := o.last(PaymentAuthorized), o.last(InventoryReleased), o.last(OrderCancelled)
		f.Step, f.EventType, f.EventID = StepCancelled, canc.typ, canc.id
		f.Detail = fmt.Sprintf("order cancelled (pickup expired) after PaymentAuthorized %s with no PaymentVoided or PaymentRefunded; InventoryReleased %s is present",
			auth.id, rel.id)
	case KindDivergence:
		pu, oc, ir := o.last(PickedUp), o.last(OrderCompleted), o.last(InventoryReleased)
		f.Step, f.EventType, f.EventID = StepInventoryReleased, ir.typ, ir.id
		f.Detail = fmt.Sprintf("InventoryReleased %s %s (caused by PickedUp %s) after OrderCompleted %s %s, neither dominating the other: inventory believes the order released, orders believes it completed",
			ir.id, vvString(ir.vv), pu.id, oc.id, vvString(oc.vv))
	case KindCancelRace:
		pu, oc := o.last(PickedUp), o.last(OrderCancelled)
		f.Step, f.EventType, f.EventID = StepCustomerNotified, oc.typ, oc.id
		f.Detail = fmt.Sprintf("OrderCancelled %s %s and PickedUp %s %s both caused by CustomerNotified, version vectors incomparable; InventoryReleased merges both, PaymentVoided follows; order ended cancelled",
			oc.id, vvString(oc.vv), pu.id, vvString(pu.vv))
	}
	return f
}

// vvString renders a version vector as compact JSON.
func vvString(vv map[string]uint64) string {
	b, _ := json.Marshal(vv)
	return string(b)
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
		LastEventAt: last.at, LastEventType: last.typ,
	}
	for _, e := range o.events {
		if !e.lost {
			s.Events++
			s.Terminal = s.Terminal || IsTerminal(e.typ)
			s.Sparse = s.Sparse || e.sparse
		}
	}
	s.KeyedByEmail = o.pii.keyedByEmail
	return s
}

// sparseFault reports whether an order with fault k may have sparse events
// (EncodingMix.Sparse): not when its finding is seen in vectors or
// causation ids, which sparse events do not carry.
func sparseFault(k Kind) bool {
	switch k {
	case KindLost, KindRace, KindCancelRace, KindOrphan, KindCausalityViolation, KindDivergence:
		return false
	}
	return true
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

// last is the order's last planned event of type typ, or nil.
func (o *order) last(typ string) *event {
	for i := len(o.events) - 1; i >= 0; i-- {
		if o.events[i].typ == typ {
			return o.events[i]
		}
	}
	return nil
}
