package auditor

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/weft-sh/weft/auditor/internal/wire"
)

// Limits of an action's fields, enforced when it is written and read.
const (
	MaxActorLen    = 256
	MaxOriginLen   = 256
	MaxVerbLen     = 64
	MaxResourceLen = 1024
	MaxDetailLen   = 4096
	MaxTargets     = 100_000
)

// Outcome is how an operator action ended.
type Outcome uint8

// The outcomes. Their numbers are part of the encoding.
const (
	OutcomeSuccess Outcome = 1
	OutcomeFailure Outcome = 2
	// OutcomeDenied is an attempt weft refused (not allowed, bad
	// credentials): PCI DSS 10.2.1.4 asks for invalid access attempts.
	OutcomeDenied Outcome = 3
)

func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "success"
	case OutcomeFailure:
		return "failure"
	case OutcomeDenied:
		return "denied"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Position names one Kafka record.
type Position struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

func (p Position) String() string { return fmt.Sprintf("%s/%d@%d", p.Topic, p.Partition, p.Offset) }

// ComparePositions orders positions by topic, partition, offset.
func ComparePositions(a, b Position) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
}

// Action is an operator action, an entry of the cluster's actions log:
// who did what, to what, when, from where, and how it ended (the fields
// PCI DSS 10.2.2 asks of an audit entry). Its canonical bytes share the
// leaves' scheme and version byte, with kind KindAction.
type Action struct {
	// TimeMs is when the action ended, in milliseconds since the Unix epoch.
	TimeMs int64
	// Actor is who acted: a user name or a token's subject. Required.
	Actor string
	// Origin is where from: "cli user@host", "http 10.0.0.7:51200".
	Origin string
	// Verb is what: ack, export, erase, verify, replay, redrive. Required;
	// lower case letters, digits, '-' and '_'.
	Verb string
	// Resource is what it acted on: "order/ORD-1", "finding/…".
	Resource string
	// Outcome is how it ended.
	Outcome Outcome
	// Detail is the reason given (an erasure's), an error, or parameters.
	Detail string
	// OrderTag is SourceKey.OrderTag of the order acted on, when there is
	// one and a source key is configured.
	OrderTag Hash
	// Targets are the records acted on; for an erasure, the records whose
	// stored payload was removed, which is how a verifier tells an erased
	// row from a deleted one. Encoded sorted, each once.
	Targets []Position
}

// MarshalBinary returns the action's canonical bytes (Targets sorted), or
// why the action is not valid.
func (a Action) MarshalBinary() ([]byte, error) {
	targets := slices.SortedFunc(slices.Values(a.Targets), ComparePositions)
	if err := a.validate(targets); err != nil {
		return nil, err
	}
	w := wire.Writer{}
	w.U8(LeafVersion)
	w.U8(uint8(KindAction))
	w.I64(a.TimeMs)
	w.String(a.Actor)
	w.String(a.Origin)
	w.String(a.Verb)
	w.String(a.Resource)
	w.U8(uint8(a.Outcome))
	w.String(a.Detail)
	w.Hash(a.OrderTag)
	w.U32(uint32(len(targets)))
	for _, t := range targets {
		w.String(t.Topic)
		w.I32(t.Partition)
		w.I64(t.Offset)
	}
	return w.B, nil
}

// Covers reports whether p is one of the action's targets.
func (a Action) Covers(p Position) bool {
	return slices.ContainsFunc(a.Targets, func(t Position) bool { return t == p })
}

func (a Action) validate(sortedTargets []Position) error {
	for _, f := range []struct {
		name, v  string
		max      int
		required bool
	}{
		{"actor", a.Actor, MaxActorLen, true},
		{"origin", a.Origin, MaxOriginLen, false},
		{"verb", a.Verb, MaxVerbLen, true},
		{"resource", a.Resource, MaxResourceLen, false},
		{"detail", a.Detail, MaxDetailLen, false},
	} {
		switch {
		case f.required && f.v == "":
			return fmt.Errorf("action %s: empty", f.name)
		case len(f.v) > f.max:
			return fmt.Errorf("action %s: %d bytes, at most %d", f.name, len(f.v), f.max)
		case !utf8.ValidString(f.v):
			return fmt.Errorf("action %s: not valid UTF-8", f.name)
		}
	}
	for i := 0; i < len(a.Verb); i++ {
		if c := a.Verb[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("action verb %q: byte %d is not a lower case letter, a digit, '-' or '_'", a.Verb, i)
		}
	}
	switch a.Outcome {
	case OutcomeSuccess, OutcomeFailure, OutcomeDenied:
	default:
		return fmt.Errorf("action outcome %d: unknown", uint8(a.Outcome))
	}
	if len(sortedTargets) > MaxTargets {
		return fmt.Errorf("action targets: %d, at most %d", len(sortedTargets), MaxTargets)
	}
	for i, t := range sortedTargets {
		if err := validTopic(t.Topic); err != nil {
			return fmt.Errorf("action target %d topic: %w", i, err)
		}
		if t.Partition < 0 || t.Offset < 0 {
			return fmt.Errorf("action target %s: negative partition or offset", t)
		}
		if i > 0 && ComparePositions(sortedTargets[i-1], t) >= 0 {
			return fmt.Errorf("action target %s: listed twice", t)
		}
	}
	return nil
}

// ParseAction reads an action's canonical bytes, as strictly as ParseLeaf
// reads a leaf: targets must be sorted and distinct.
func ParseAction(b []byte) (Action, error) {
	r := wire.NewReader(b)
	if v := r.U8("version"); r.Err() == nil && v != LeafVersion {
		return Action{}, fmt.Errorf("action: version %d, this weft reads version %d", v, LeafVersion)
	}
	if k := Kind(r.U8("kind")); r.Err() == nil && k != KindAction {
		return Action{}, fmt.Errorf("action: kind %s, want action", k)
	}
	var a Action
	a.TimeMs = r.I64("time")
	a.Actor = r.String("actor", MaxActorLen)
	a.Origin = r.String("origin", MaxOriginLen)
	a.Verb = r.String("verb", MaxVerbLen)
	a.Resource = r.String("resource", MaxResourceLen)
	a.Outcome = Outcome(r.U8("outcome"))
	a.Detail = r.String("detail", MaxDetailLen)
	a.OrderTag = r.Hash("order tag")
	// A target takes at least 4+1+4+8 bytes (a one-byte topic).
	n := r.Count("targets", MaxTargets, 17)
	for i := 0; i < n && r.Err() == nil; i++ {
		a.Targets = append(a.Targets, Position{
			Topic:     r.String("target topic", MaxTopicLen),
			Partition: r.I32("target partition"),
			Offset:    r.I64("target offset"),
		})
	}
	if err := r.Done(); err != nil {
		return Action{}, fmt.Errorf("action: %w", err)
	}
	if !slices.IsSortedFunc(a.Targets, ComparePositions) {
		return Action{}, errors.New("action targets: not in canonical (sorted) order")
	}
	if err := a.validate(a.Targets); err != nil {
		return Action{}, err
	}
	return a, nil
}
