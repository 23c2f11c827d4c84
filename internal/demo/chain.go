package demo

import (
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	contract "github.com/weft-sh/weft/internal/event"
)

// This file builds an order's causal chain: which events, caused by which,
// at which offset from the order's start. Times are then placed by plan.go.

// span is a closed duration range.
type span struct{ lo, hi time.Duration }

// timing spaces an order's events.
type timing struct {
	// steps is the dwell in a step before the next event; def when absent.
	steps map[string]span
	def   span
	// backoff for retry attempt k is backoffBase<<(k-1) plus up to backoffJitter.
	backoffBase, backoffJitter time.Duration
	// window is the pickup hold: CustomerNotified → PickupExpired.
	window span
	// skew bounds how far each racing event lands from the window's end.
	skew time.Duration
	// redelivery is the delay of a duplicate after the original.
	redelivery span
	// burstGap separates the records of an out-of-order burst.
	burstGap time.Duration
	// worst always takes upper bounds (used by MinHistory).
	worst bool
}

// historyTiming is realistic: seconds to minutes per step, and every dwell
// is well under its step's SLA so healthy orders never look stuck.
func historyTiming() *timing {
	s, m := time.Second, time.Minute
	return &timing{
		steps: map[string]span{
			StepPlaced:             {2 * s, 40 * s},
			StepInventoryReserved:  {1 * s, 20 * s},
			StepPaymentRequested:   {5 * s, 60 * s},
			StepPaymentAuthorized:  {30 * s, 5 * m},
			StepPaymentDeclined:    {5 * s, 30 * s},
			StepPaymentFailed:      {5 * s, 30 * s},
			StepFulfillmentStarted: {3 * m, 25 * m},
			StepReadyForPickup:     {5 * s, 60 * s},
			StepCustomerNotified:   {5 * m, 40 * m},
			StepPickedUp:           {5 * s, 60 * s},
			StepPaymentCaptured:    {1 * s, 10 * s},
			StepPickupExpired:      {10 * s, 2 * m},
			StepInventoryReleased:  {5 * s, 30 * s},
			StepPaymentVoided:      {1 * s, 10 * s},
		},
		def:         span{1 * s, 10 * s},
		backoffBase: 30 * s, backoffJitter: 10 * s,
		window:     span{45 * m, 46 * m},
		skew:       30 * s,
		redelivery: span{2 * s, 60 * s},
		burstGap:   100 * time.Millisecond,
	}
}

// liveTiming compresses every step into [lo, hi].
func liveTiming(lo, hi time.Duration) *timing {
	return &timing{
		def:         span{lo, hi},
		backoffBase: lo, backoffJitter: lo,
		window:     span{2 * hi, 3 * hi},
		skew:       lo / 2,
		redelivery: span{lo, hi},
		burstGap:   10 * time.Millisecond,
	}
}

func (t *timing) pick(s span, r *rand.Rand) time.Duration {
	if t.worst || s.hi <= s.lo {
		return s.hi.Truncate(time.Millisecond)
	}
	return (s.lo + time.Duration(r.Int64N(int64(s.hi-s.lo)+1))).Truncate(time.Millisecond)
}

func (t *timing) dwell(step string, r *rand.Rand) time.Duration {
	if s, ok := t.steps[step]; ok {
		return t.pick(s, r)
	}
	return t.pick(t.def, r)
}

func (t *timing) backoff(attempt int, r *rand.Rand) time.Duration {
	return t.backoffBase<<(attempt-1) + t.pick(span{0, t.backoffJitter}, r)
}

// maxRetries is how many PaymentRetryScheduled a failed payment goes through.
const maxRetries = 3

// outcome is how an order's workflow ends.
type outcome int

const (
	outCompleted outcome = iota
	outExpired
	outDeclined
	outFailed
	outRaceCompleted
	outRaceCancelled
	// outUnvoided is outExpired without the PaymentVoided compensation:
	// InventoryReleased → OrderCancelled (missing_compensation).
	outUnvoided
	// outDiverged is outCompleted plus an InventoryReleased that inventory
	// emits after OrderCompleted, caused by PickedUp and concurrent with the
	// completion (divergence).
	outDiverged
	// outCancelRace: the customer cancels as the store hands the order
	// over (PickedUp ∥ OrderCancelled), then inventory releases having
	// seen both and payments voids (cancel_race).
	outCancelRace
	numOutcomes
)

var outcomeNames = [...]string{"completed", "expired", "declined", "failed", "race-completed", "race-cancelled",
	"expired-unvoided", "completed-diverged", "cancel-race"}

// stuckable reports whether stuck orders are cut from this outcome's chain:
// the plain outcomes only, not the fault-specific ones.
func (o outcome) stuckable() bool { return o < outRaceCompleted }

// spec chooses the workflow variant of an order.
type spec struct {
	async   bool // PaymentRequested (async) instead of a direct PaymentAuthorized
	retries int  // PaymentRetryScheduled events (async only)
	out     outcome
}

func (s spec) path() string {
	mode := "sync"
	if s.async {
		mode = "async"
	}
	return mode + "/" + outcomeNames[s.out]
}

// event is one logical event of an order.
type event struct {
	typ   string
	cause int // index of the causing event in the chain, -1 for none
	// also are further vector parents (indexes of earlier events): the
	// producing service saw them too, so the event's vector merges theirs,
	// but its causation id names only cause.
	also    []int
	off     time.Duration // offset from the order's start
	attempt int           // payment attempt (payment events)
	backoff time.Duration // PaymentRetryScheduled: delay until the next attempt

	// Filled in by the planner.
	at     time.Time
	id     string
	span   string
	vv     map[string]uint64
	n      int // occurrence of typ within the order, from 1
	lost   bool
	dup    bool
	data   map[string]any
	format contract.Format
	ext    bool // causationid/correlationid/versionvector in the envelope; in band with EncodingMix.InBand
	sparse bool // plain JSON with the four required fields only (EncodingMix.Sparse)
	rec    *kgo.Record

	// Fault mutations (nil/zero when the event is produced as planned).
	fakeCause   string            // orphan: the causation id produced, naming no event
	sentVV      map[string]uint64 // causality_violation: the vector produced instead of vv
	conflict    int64             // conflicting_duplicate: cents added to the copy's amount
	conflictRec *kgo.Record       // conflicting_duplicate: the copy with the other payload
}

// wireVV is the version vector the event's record carries.
func (e *event) wireVV() map[string]uint64 {
	if e.sentVV != nil {
		return e.sentVV
	}
	return e.vv
}

type chain struct {
	t   *timing
	r   *rand.Rand
	evs []*event
}

// add appends an event at an explicit offset.
func (c *chain) add(typ string, cause int, off time.Duration) int {
	c.evs = append(c.evs, &event{typ: typ, cause: cause, off: off})
	return len(c.evs) - 1
}

// next appends an event caused by cause, after the dwell in cause's step.
func (c *chain) next(typ string, cause int) int {
	return c.after(typ, cause, c.evs[cause].off)
}

// after appends an event caused by cause, a dwell after from.
func (c *chain) after(typ string, cause int, from time.Duration) int {
	ce := c.evs[cause]
	var d time.Duration
	if ce.typ == PaymentRetryScheduled {
		d = ce.backoff
	} else {
		d = c.t.dwell(StepOf(ce.typ), c.r)
	}
	return c.add(typ, cause, from+d)
}

// buildChain lays out the events of one order variant.
func buildChain(s spec, t *timing, r *rand.Rand) []*event {
	c := &chain{t: t, r: r}
	cur := c.add(OrderPlaced, -1, 0)
	cur = c.next(InventoryReserved, cur)
	attempt := 1
	if s.async {
		cur = c.next(PaymentRequested, cur)
		c.evs[cur].attempt = attempt
		for range s.retries {
			cur = c.next(PaymentRetryScheduled, cur)
			c.evs[cur].attempt = attempt
			c.evs[cur].backoff = t.backoff(attempt, r)
			attempt++
		}
		switch s.out {
		case outDeclined, outFailed:
			typ := PaymentDeclined
			if s.out == outFailed {
				typ = PaymentFailed
			}
			cur = c.next(typ, cur)
			c.evs[cur].attempt = attempt
			cur = c.next(InventoryReleased, cur)
			c.next(OrderCancelled, cur)
			return c.evs
		}
	}
	cur = c.next(PaymentAuthorized, cur)
	c.evs[cur].attempt = attempt
	cur = c.next(FulfillmentStarted, cur)
	rfp := c.next(ReadyForPickup, cur)
	cn := c.next(CustomerNotified, rfp)
	cnOff := c.evs[cn].off
	switch s.out {
	case outExpired:
		cur = c.add(PickupExpired, cn, cnOff+t.pick(t.window, r))
		cur = c.next(InventoryReleased, cur)
		cur = c.next(PaymentVoided, cur)
		c.next(OrderCancelled, cur)
	case outRaceCompleted, outRaceCancelled:
		// The store hands the order over just as the pickup hold expires.
		// PickedUp follows the notification; the expiry sweeper acts on the
		// hold armed at ReadyForPickup. Neither names the other as cause.
		w := cnOff + t.pick(t.window, r)
		jitter := func() time.Duration {
			if t.worst {
				return t.skew
			}
			return t.pick(span{-t.skew, t.skew}, r)
		}
		pu := c.add(PickedUp, cn, w+jitter())
		pe := c.add(PickupExpired, rfp, w+jitter())
		from := max(c.evs[pu].off, c.evs[pe].off)
		// The race resolves: the service acting next has seen both
		// branches, so its event's vector merges them (it still names
		// only the branch it follows as cause) and the order converges.
		if s.out == outRaceCompleted {
			cur = c.after(PaymentCaptured, pu, from)
			c.evs[cur].also = []int{pe}
			c.next(OrderCompleted, cur)
		} else {
			cur = c.after(InventoryReleased, pe, from)
			c.evs[cur].also = []int{pu}
			cur = c.next(PaymentVoided, cur)
			c.next(OrderCancelled, cur)
		}
	case outUnvoided:
		// Payments never voids the authorization: no counter is skipped,
		// the compensation is simply missing.
		cur = c.add(PickupExpired, cn, cnOff+t.pick(t.window, r))
		cur = c.next(InventoryReleased, cur)
		c.next(OrderCancelled, cur)
	case outCancelRace:
		// The customer cancels online just as the store hands the order
		// over: both follow the notification, neither sees the other.
		// The cancellation wins: inventory, having seen both, releases
		// the reservation, and payments voids the authorization.
		at := cnOff + t.dwell(StepCustomerNotified, r)
		jitter := func() time.Duration {
			if t.worst {
				return t.skew
			}
			return t.pick(span{-t.skew, t.skew}, r)
		}
		pu := c.add(PickedUp, cn, at+jitter())
		oc := c.add(OrderCancelled, cn, at+jitter())
		cur = c.after(InventoryReleased, oc, max(c.evs[pu].off, c.evs[oc].off))
		c.evs[cur].also = []int{pu}
		c.next(PaymentVoided, cur)
	case outDiverged:
		// Inventory releases the reservation, having seen the pickup but
		// not the completion: the order ends with two maximal events.
		pu := c.next(PickedUp, cn)
		cur = c.next(PaymentCaptured, pu)
		oc := c.next(OrderCompleted, cur)
		c.after(InventoryReleased, pu, c.evs[oc].off)
	default: // outCompleted
		cur = c.next(PickedUp, cn)
		cur = c.next(PaymentCaptured, cur)
		c.next(OrderCompleted, cur)
	}
	return c.evs
}

// truncateAt cuts the chain after the event that enters step (the last
// such event for payment_retry_scheduled, the first otherwise); ok is false
// when the chain never enters step.
func truncateAt(evs []*event, step string) (_ []*event, ok bool) {
	idx := -1
	for i, e := range evs {
		if StepOf(e.typ) == step {
			idx = i
			if step != StepPaymentRetryScheduled {
				break
			}
		}
	}
	if idx < 0 {
		return evs, false
	}
	return evs[:idx+1], true
}

// assignVectors computes every event's version vector in chain order: the
// pointwise max of its parents' vectors (the cause and any also), with the
// producing service's entry set to one more than the larger of that and
// the service's own last emission for the order. On a linear chain that is
// "cause + own entry + 1"; in a race the two branches end up incomparable
// until the event that resolves it merges them. Each service's own entries
// count 1, 2, 3… with no hole.
func assignVectors(evs []*event) {
	local := map[string]uint64{}
	for _, e := range evs {
		vv := map[string]uint64{}
		parents := e.also
		if e.cause >= 0 {
			parents = append([]int{e.cause}, e.also...)
		}
		for _, p := range parents {
			for k, v := range evs[p].vv {
				vv[k] = max(vv[k], v)
			}
		}
		svc := serviceOf(e.typ)
		own := max(vv[svc], local[svc]) + 1
		vv[svc], local[svc] = own, own
		e.vv = vv
	}
}

// maxOffset is the latest offset in the chain (the last event in time).
func maxOffset(evs []*event) time.Duration {
	var m time.Duration
	for _, e := range evs {
		m = max(m, e.off)
	}
	return m
}

// Stuck orders' last event lands stuckAgeMin..stuckAgeMax × SLA before Now.
const (
	stuckAgeMin = 2.2
	stuckAgeMax = 3.0
)

// historyMargin separates a healthy order's last event from Now.
const historyMargin = time.Minute

// MinHistory is the shortest history window that fits every order variant:
// the longest healthy order before Now, and every stuck order's steps plus
// 2.2×SLA of age. Config.Validate requires History ≥ MinHistory.
func MinHistory() time.Duration {
	t := historyTiming()
	t.worst = true
	var need time.Duration
	for _, async := range []bool{false, true} {
		for retries := 0; retries <= maxRetries; retries++ {
			if !async && retries > 0 {
				continue
			}
			for out := range numOutcomes {
				evs := buildChain(spec{async, retries, out}, t, nil)
				need = max(need, maxOffset(evs)+historyMargin)
				if !out.stuckable() {
					continue
				}
				for _, st := range stuckSteps {
					if cut, ok := truncateAt(evs, st); ok {
						age := time.Duration(stuckAgeMin * float64(sla(st)))
						need = max(need, maxOffset(cut)+age+time.Second)
					}
				}
			}
		}
	}
	return need.Truncate(time.Minute) + time.Minute
}
