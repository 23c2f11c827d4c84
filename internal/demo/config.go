package demo

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Config configures a demo run. Start from DefaultConfig.
type Config struct {
	// Seed makes the run deterministic: the same Config yields the same
	// records and manifest.
	Seed int64 `json:"seed" yaml:"seed"`
	// Orders is the number of history orders.
	Orders int `json:"orders" yaml:"orders"`
	// Now is the end of the history window: every history event is before it.
	Now time.Time `json:"now" yaml:"now"`
	// History is the length of the window, ending at Now, over which history
	// orders start. It must be at least MinHistory().
	History time.Duration `json:"history" yaml:"history"`
	// Topics names the topics.
	Topics TopicNames `json:"topics" yaml:"topics"`
	// Encoding weighs the three record encodings.
	Encoding EncodingMix `json:"encoding" yaml:"encoding"`
	// Faults is the mix of injected faults.
	Faults FaultMix `json:"faults" yaml:"faults"`
	// PersonalData puts personal data where masking must find it, beyond
	// the payload fields every order has. Off by default.
	PersonalData PersonalData `json:"personal_data" yaml:"personal_data"`
	// Live configures live mode (after the history).
	Live LiveConfig `json:"live" yaml:"live"`
	// Consumers runs the shop's services as consumer groups of the traffic
	// (see ConsumersConfig and NewConsumers).
	Consumers ConsumersConfig `json:"consumers" yaml:"consumers"`
}

// TopicNames builds full topic names: Prefix + base name + Suffix.
type TopicNames struct {
	Prefix string `json:"prefix" yaml:"prefix"`
	Suffix string `json:"suffix" yaml:"suffix"`
}

// Name returns the full name of a base topic (e.g. TopicOrders).
func (t TopicNames) Name(base string) string { return t.Prefix + base + t.Suffix }

// All returns the full names of the seven topics, the DLQ last.
func (t TopicNames) All() []string {
	bases := []string{TopicOrders, TopicInventory, TopicFulfillment, TopicPickup,
		TopicPayments, TopicNotifications, TopicPaymentsDLQ}
	out := make([]string, len(bases))
	for i, b := range bases {
		out[i] = t.Name(b)
	}
	return out
}

// EncodingMix weighs the record encodings (weights need not sum to 1) and
// says how unevenly the services are instrumented.
type EncodingMix struct {
	// Structured is the weight of CloudEvents structured mode (JSON envelope).
	Structured float64 `json:"structured" yaml:"structured"`
	// Binary is the weight of CloudEvents binary mode (ce_* headers).
	Binary float64 `json:"binary" yaml:"binary"`
	// JSON is the weight of plain JSON records.
	JSON float64 `json:"json" yaml:"json"`
	// InBand moves the contract's extension fields of about half the events
	// off the contract headers (causation-id, correlation-id,
	// version-vector, idempotency-key, traceparent) and into the place
	// their encoding has for them: envelope attributes in structured mode
	// (causationid, correlationid, versionvector, traceparent; the
	// idempotency key in data), ce_* headers in binary mode, members of
	// the object in plain JSON (causation_id, correlation_id,
	// version_vector, idempotency_key, traceparent). Default false: every
	// event carries the contract headers.
	InBand bool `json:"in_band,omitempty" yaml:"in_band"`
	// Sparse names services (ServiceOrders, ServiceInventory…) that
	// publish plain JSON carrying only the four fields the contract
	// requires — event id, type, order id, time — beside the data, and no
	// contract header: no causation id, version vector, idempotency key or
	// trace context; the other services' vectors have no entry for them
	// (they never saw a counter of theirs), though their causation ids may
	// name a sparse event. An order whose fault is seen in vectors or causation
	// ids (lost, race, cancel_race, orphan, causality_violation,
	// divergence) keeps every event instrumented, so that its finding stays
	// the one ExpectedFinding names. Default none.
	Sparse []string `json:"sparse,omitempty" yaml:"sparse"`
}

// PersonalData adds personal data to the traffic where masking must find
// it (docs/event-contract.md, "Masking"). Every order's payloads carry a
// customer e-mail and phone and a card number whatever these say.
type PersonalData struct {
	// KeyedByEmail is the fraction of orders whose records are keyed by the
	// customer's e-mail address instead of the order id (the event still
	// names its order), and whose correlation id names it too. Default 0.
	KeyedByEmail float64 `json:"keyed_by_email,omitempty" yaml:"keyed_by_email"`
	// Payloads adds a card verification value (one of CVVs) beside every
	// card number, a map keyed by the customer's e-mail, and card numbers
	// in free text. Default false.
	Payloads bool `json:"payloads,omitempty" yaml:"payloads"`
	// Headers adds headers to the customer-facing events: the customer's
	// e-mail in a header value and in a header name, a card, CVV and
	// phone in a debug header and in a JSON header, and a cvv header.
	// Default false.
	Headers bool `json:"headers,omitempty" yaml:"headers"`
	// Undecodable is how many records that cannot be decoded — broken
	// JSON, form data, invalid UTF-8, each with a card number, a CVV and
	// e-mail addresses, keyed by an e-mail — the history adds
	// (Manifest.Undecodable). Default 0.
	Undecodable int `json:"undecodable,omitempty" yaml:"undecodable"`
}

// FaultShare is how many orders get one fault kind: an exact Count, or a
// Fraction of Orders (rounded). Set one of the two.
type FaultShare struct {
	Fraction float64 `json:"fraction,omitempty" yaml:"fraction,omitempty"`
	Count    int     `json:"count,omitempty" yaml:"count,omitempty"`
}

// FaultMix gives the share of each fault kind. Each faulty order has
// exactly one fault; the rest are healthy.
type FaultMix struct {
	Stuck                FaultShare `json:"stuck" yaml:"stuck"`
	Lost                 FaultShare `json:"lost" yaml:"lost"`
	Duplicate            FaultShare `json:"duplicate" yaml:"duplicate"`
	OutOfOrder           FaultShare `json:"out_of_order" yaml:"out_of_order"`
	Race                 FaultShare `json:"race" yaml:"race"`
	PaymentFailed        FaultShare `json:"payment_failed" yaml:"payment_failed"`
	Orphan               FaultShare `json:"orphan" yaml:"orphan"`
	CausalityViolation   FaultShare `json:"causality_violation" yaml:"causality_violation"`
	ConflictingDuplicate FaultShare `json:"conflicting_duplicate" yaml:"conflicting_duplicate"`
	MissingCompensation  FaultShare `json:"missing_compensation" yaml:"missing_compensation"`
	Divergence           FaultShare `json:"divergence" yaml:"divergence"`
	CancelRace           FaultShare `json:"cancel_race" yaml:"cancel_race"`
}

// share returns where a kind's share is kept, nil for an unknown kind.
func (m *FaultMix) share(k Kind) *FaultShare {
	switch k {
	case KindStuck:
		return &m.Stuck
	case KindLost:
		return &m.Lost
	case KindDuplicate:
		return &m.Duplicate
	case KindOutOfOrder:
		return &m.OutOfOrder
	case KindRace:
		return &m.Race
	case KindPaymentFailed:
		return &m.PaymentFailed
	case KindOrphan:
		return &m.Orphan
	case KindCausalityViolation:
		return &m.CausalityViolation
	case KindConflictingDuplicate:
		return &m.ConflictingDuplicate
	case KindMissingCompensation:
		return &m.MissingCompensation
	case KindDivergence:
		return &m.Divergence
	case KindCancelRace:
		return &m.CancelRace
	}
	return nil
}

// Share returns the share configured for a kind.
func (m FaultMix) Share(k Kind) FaultShare {
	if p := m.share(k); p != nil {
		return *p
	}
	return FaultShare{}
}

// Set sets the share of a kind; it reports false for an unknown kind.
func (m *FaultMix) Set(k Kind, s FaultShare) bool {
	p := m.share(k)
	if p == nil {
		return false
	}
	*p = s
	return true
}

// Counts returns how many of orders get each kind: Count when set, else
// Fraction×orders rounded; if rounding overshoots, later kinds give way.
func (m FaultMix) Counts(orders int) map[Kind]int {
	out := make(map[Kind]int, len(Kinds()))
	left := orders
	for _, k := range Kinds() {
		s := m.Share(k)
		n := s.Count
		if n == 0 {
			n = int(math.Round(s.Fraction * float64(orders)))
		}
		n = min(n, left)
		out[k] = n
		left -= n
	}
	return out
}

// probability returns the per-order chance of a kind in live mode: Fraction,
// or Count/orders when the share is a count.
func (m FaultMix) probability(k Kind, orders int) float64 {
	s := m.Share(k)
	if s.Count > 0 {
		if orders == 0 {
			return 0
		}
		return float64(s.Count) / float64(orders)
	}
	return s.Fraction
}

// LiveConfig configures live mode: new orders at Rate per second, their
// steps StepDelayMin..StepDelayMax apart, event time = wall clock.
type LiveConfig struct {
	// Rate is new orders per second; 0 disables live mode.
	Rate float64 `json:"rate" yaml:"rate"`
	// StepDelayMin and StepDelayMax bound the (compressed) delay between an
	// order's steps.
	StepDelayMin time.Duration `json:"step_delay_min" yaml:"step_delay_min"`
	StepDelayMax time.Duration `json:"step_delay_max" yaml:"step_delay_max"`
	// MaxOrders stops live mode after that many orders are produced (0 = run
	// until the context is cancelled).
	MaxOrders int `json:"max_orders" yaml:"max_orders"`
}

// DefaultConfig returns a 200-order, 3-hour history ending now, the
// 60/30/10 encoding mix, the default fault mix, 2 live orders per second
// and the default consumers (DefaultConsumers).
//
// Default fault mix (fractions of Orders; for 200 orders): stuck 0.11 (22,
// two per stuck step), lost 0.03 (6), duplicate 0.04 (8), out_of_order 0.03
// (6), race 0.02 (4), payment_failed 0.03 (6), and 0.02 (4) each of orphan,
// causality_violation, conflicting_duplicate, missing_compensation and
// divergence, none of cancel_race; the other 128 are healthy.
func DefaultConfig() Config {
	return Config{
		Seed:     1,
		Orders:   200,
		Now:      time.Now().UTC().Truncate(time.Millisecond),
		History:  3 * time.Hour,
		Encoding: EncodingMix{Structured: 0.6, Binary: 0.3, JSON: 0.1},
		Faults: FaultMix{
			Stuck:                FaultShare{Fraction: 0.11},
			Lost:                 FaultShare{Fraction: 0.03},
			Duplicate:            FaultShare{Fraction: 0.04},
			OutOfOrder:           FaultShare{Fraction: 0.03},
			Race:                 FaultShare{Fraction: 0.02},
			PaymentFailed:        FaultShare{Fraction: 0.03},
			Orphan:               FaultShare{Fraction: 0.02},
			CausalityViolation:   FaultShare{Fraction: 0.02},
			ConflictingDuplicate: FaultShare{Fraction: 0.02},
			MissingCompensation:  FaultShare{Fraction: 0.02},
			Divergence:           FaultShare{Fraction: 0.02},
		},
		Live:      LiveConfig{Rate: 2, StepDelayMin: 200 * time.Millisecond, StepDelayMax: 2 * time.Second},
		Consumers: DefaultConsumers(),
	}
}

// Start returns the start of the history window, Now - History.
func (c Config) Start() time.Time { return c.Now.Add(-c.History) }

// Problem is one invalid setting, named by its key path (e.g. "faults.race.fraction").
type Problem struct {
	Path    string
	Message string
}

// ConfigError lists every problem Validate found.
type ConfigError struct {
	Problems []Problem
}

func (e *ConfigError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Path + ": " + p.Message
	}
	return "demo: invalid config: " + strings.Join(parts, "; ")
}

// Validate reports every problem with the config as a *ConfigError, or nil.
func (c Config) Validate() error {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{path, fmt.Sprintf(format, args...)})
	}
	if c.Orders < 0 {
		bad("orders", "must not be negative, got %d", c.Orders)
	}
	if c.Now.IsZero() {
		bad("now", "must be set")
	}
	if minH := MinHistory(); c.History < minH {
		bad("history", "must be at least %s (stuck orders need 2×SLA of age plus the steps before), got %s", minH, c.History)
	}
	for _, f := range []struct{ path, v string }{{"topics.prefix", c.Topics.Prefix}, {"topics.suffix", c.Topics.Suffix}} {
		if i := strings.IndexFunc(f.v, func(r rune) bool { return !topicRune(r) }); i >= 0 {
			bad(f.path, "%q has %q; topic names allow only a-z A-Z 0-9 . _ -", f.v, f.v[i:i+1])
		}
	}
	if n := len(c.Topics.Name(TopicNotifications)); n > 249 {
		bad("topics", "names are up to %d characters, Kafka allows 249", n)
	}
	enc := []struct {
		path string
		w    float64
	}{{"encoding.structured", c.Encoding.Structured}, {"encoding.binary", c.Encoding.Binary}, {"encoding.json", c.Encoding.JSON}}
	sum := 0.0
	for _, e := range enc {
		if e.w < 0 || math.IsNaN(e.w) || math.IsInf(e.w, 0) {
			bad(e.path, "must be a finite weight ≥ 0, got %v", e.w)
		} else {
			sum += e.w
		}
	}
	if sum <= 0 {
		bad("encoding", "at least one weight must be positive")
	}
	seen := map[string]bool{}
	for i, svc := range c.Encoding.Sparse {
		switch {
		case !slices.Contains(Services(), svc):
			bad(fmt.Sprintf("encoding.sparse[%d]", i), "%q is not a service (want one of %s)", svc, strings.Join(Services(), ", "))
		case seen[svc]:
			bad(fmt.Sprintf("encoding.sparse[%d]", i), "%q is named twice", svc)
		}
		seen[svc] = true
	}
	if f := c.PersonalData.KeyedByEmail; f < 0 || f > 1 || math.IsNaN(f) {
		bad("personal_data.keyed_by_email", "must be in [0, 1], got %v", f)
	}
	if n := c.PersonalData.Undecodable; n < 0 {
		bad("personal_data.undecodable", "must not be negative, got %d", n)
	} else if n > 0 && c.Orders == 0 {
		bad("personal_data.undecodable", "needs history orders to take personal data from")
	}
	var fracs float64
	counts := 0
	for _, k := range Kinds() {
		s := c.Faults.Share(k)
		path := "faults." + string(k)
		if s.Fraction < 0 || s.Fraction > 1 || math.IsNaN(s.Fraction) {
			bad(path+".fraction", "must be in [0, 1], got %v", s.Fraction)
		}
		if s.Count < 0 {
			bad(path+".count", "must not be negative, got %d", s.Count)
		}
		if s.Count > 0 && s.Fraction > 0 {
			bad(path, "set fraction or count, not both")
		}
		if s.Count > 0 {
			counts += s.Count
		} else if s.Fraction > 0 {
			fracs += s.Fraction
		}
	}
	if fracs > 1 {
		bad("faults", "fractions add up to %v, more than 1", fracs)
	}
	if c.Orders >= 0 && counts > c.Orders {
		bad("faults", "counts add up to %d, more than orders (%d)", counts, c.Orders)
	}
	if c.Live.Rate < 0 || math.IsNaN(c.Live.Rate) || math.IsInf(c.Live.Rate, 0) {
		bad("live.rate", "must be a finite rate ≥ 0, got %v", c.Live.Rate)
	}
	if c.Live.Rate > 1000 {
		bad("live.rate", "must be at most 1000 orders per second, got %v", c.Live.Rate)
	}
	if c.Live.Rate > 0 {
		if c.Live.StepDelayMin <= 0 {
			bad("live.step_delay_min", "must be positive, got %s", c.Live.StepDelayMin)
		}
		if c.Live.StepDelayMax < c.Live.StepDelayMin {
			bad("live.step_delay_max", "must be ≥ step_delay_min (%s), got %s", c.Live.StepDelayMin, c.Live.StepDelayMax)
		}
	}
	if c.Live.MaxOrders < 0 {
		bad("live.max_orders", "must not be negative, got %d", c.Live.MaxOrders)
	}
	c.Consumers.validate(c.Live.Rate, bad)
	if len(ps) > 0 {
		return &ConfigError{Problems: ps}
	}
	return nil
}

func topicRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}
