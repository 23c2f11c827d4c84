package consistency

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weft-sh/weft/internal/chstore"
)

// Why a stuck order is stuck (docs/consistency.md, "Why is it stuck?").
const (
	// ReasonNotDelivered: the owner's consumer group has not consumed the
	// record that should trigger the next event (its committed offset on
	// the record's partition is at or below the record's offset).
	ReasonNotDelivered = "not-delivered"
	// ReasonNoAnswer: the owner's groups consumed the trigger (or the
	// owner emitted it itself), and the owner neither emitted the expected
	// event nor dead-lettered anything: look at the service.
	ReasonNoAnswer = "no-answer"
	// ReasonDeadLettered: a record of the order sits in a dead-letter topic.
	ReasonDeadLettered = "dead-lettered"
	// ReasonNoConsumer: no consumer group of the owner reads the topic the
	// trigger is on.
	ReasonNoConsumer = "no-consumer"
	// ReasonUnknown: the evidence is missing (Why.Missing says which).
	ReasonUnknown = "unknown"
)

// Reasons lists every reason, in the order docs/consistency.md gives them.
var Reasons = []string{ReasonNotDelivered, ReasonNoAnswer, ReasonDeadLettered, ReasonNoConsumer, ReasonUnknown}

// Why says why a stuck order is stuck, with the evidence.
type Why struct {
	// Reason is one of Reasons.
	Reason string `json:"reason"`
	// Text says it in one line, for the on-call engineer.
	Text string `json:"text"`
	// Trigger is the record that should have made the owner answer: the
	// order's latest event entering the step it is stuck in.
	Trigger *Record `json:"trigger,omitempty"`
	// SelfEmitted is true when the owner emitted the trigger itself (it
	// reads no topic for it): there was nothing to deliver.
	SelfEmitted bool `json:"self_emitted,omitempty"`
	// Groups are the owner's consumer groups on the trigger's partition, as
	// the newest queue-health sample saw them, unread first.
	Groups []GroupPosition `json:"groups,omitempty"`
	// DeadLetter is the order's record in a dead-letter topic.
	DeadLetter *DeadLetter `json:"dead_letter,omitempty"`
	// Readers are the groups reading the trigger's topic, none of them the
	// owner's (no-consumer).
	Readers []string `json:"readers,omitempty"`
	// Gone are groups of the owner seen reading the trigger's topic within
	// the last day and missing from the newest sample (no-consumer).
	Gone []GoneGroup `json:"gone,omitempty"`
	// Missing says what evidence is missing (unknown).
	Missing string `json:"missing,omitempty"`
	// SampledAt is the time of the queue-health sample the groups come from.
	SampledAt time.Time `json:"sampled_at,omitzero"`
	// At is when weft worked this out (wall clock).
	At time.Time `json:"at"`
}

// Record is one Kafka record of an order.
type Record struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	EventID   string    `json:"event_id"`
	Type      string    `json:"type"`
	Service   string    `json:"service,omitempty"`
	EventTime time.Time `json:"event_time"`
}

// String is the record's place: topic/partition@offset.
func (r Record) String() string { return fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset) }

// GroupPosition is where a consumer group stood on the trigger's partition.
type GroupPosition struct {
	Group string `json:"group"`
	// State is the group's state as Kafka names it (Stable, Empty,
	// PreparingRebalance, …); Condition says it in a word: stable,
	// rebalancing, empty, gone or unknown.
	State     string `json:"state"`
	Condition string `json:"condition"`
	// Members is how many members the group had; -1 when unknown.
	Members int32 `json:"members"`
	// CommittedOffset is the next offset the group reads on the partition;
	// -1 when it never committed there.
	CommittedOffset int64 `json:"committed_offset"`
	// Read is true when the group consumed the trigger: its committed
	// offset is past the trigger's offset.
	Read bool `json:"read"`
	// LagMessages and LagSeconds are the group's lag on the partition:
	// records not yet consumed, and the age of the oldest of them (-1 when
	// unknown).
	LagMessages int64   `json:"lag_messages"`
	LagSeconds  float64 `json:"lag_seconds"`
}

// DeadLetter is a record of the order in a dead-letter topic.
type DeadLetter struct {
	Record
	// OfTrigger is true when it is a copy of the trigger itself.
	OfTrigger bool `json:"of_trigger"`
	// Error is what the dead-lettering service said, from the record's
	// headers, and ErrorHeader the header it is from ("" when none says).
	Error       string `json:"error,omitempty"`
	ErrorHeader string `json:"error_header,omitempty"`
}

// GoneGroup is a group last seen on a topic before the newest sample.
type GoneGroup struct {
	Group    string    `json:"group"`
	LastSeen time.Time `json:"last_seen"`
}

// condition says a group state in a word.
func condition(state string) string {
	switch state {
	case "Stable":
		return "stable"
	case "PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling":
		return "rebalancing"
	case "Empty":
		return "empty"
	case "Dead":
		return "gone"
	}
	return "unknown"
}

// queueSnapshot is the newest queue-health sample, indexed for diagnosis.
type queueSnapshot struct {
	at       time.Time
	topics   map[string]bool                      // measured topics
	parts    map[partKey][]chstore.QueueHealthRow // group rows by partition
	readers  map[string][]string                  // topic → groups reading it, sorted
	err      error                                // why there is no snapshot
	gone     map[string][]chstore.QueueHealthGroupSeen
	maxAge   time.Duration
	sampled  bool
	groupsOf groupMap
}

type partKey struct {
	topic     string
	partition int32
}

// newQueueSnapshot indexes the rows of one sample taken at ts.
func newQueueSnapshot(ts time.Time, rows []chstore.QueueHealthRow, gm groupMap, maxAge time.Duration) *queueSnapshot {
	s := &queueSnapshot{at: ts.UTC(), topics: map[string]bool{}, parts: map[partKey][]chstore.QueueHealthRow{},
		readers: map[string][]string{}, maxAge: maxAge, sampled: len(rows) > 0, groupsOf: gm}
	for _, r := range rows {
		if r.Group == "" {
			s.topics[r.Topic] = true
			continue
		}
		if gm.ignore[r.Group] {
			continue
		}
		k := partKey{r.Topic, r.Partition}
		s.parts[k] = append(s.parts[k], r)
		if !slices.Contains(s.readers[r.Topic], r.Group) {
			s.readers[r.Topic] = append(s.readers[r.Topic], r.Group)
		}
	}
	for t := range s.readers {
		slices.Sort(s.readers[t])
	}
	return s
}

// explain works out why s is stuck, from its trigger (nil: not stored), a
// dead-lettered record of the order (nil: none) and the newest queue-health
// sample, at wall time at. It reads nothing: the caller loads the evidence.
func explain(s StuckOrder, trig *Record, dl *DeadLetter, snap *queueSnapshot, at time.Time) Why {
	w := Why{Trigger: trig, At: at.UTC()}
	unknown := func(format string, args ...any) Why {
		w.Reason, w.Missing = ReasonUnknown, fmt.Sprintf(format, args...)
		w.Text = "unknown: " + w.Missing
		return w
	}
	switch {
	case s.Owner == "":
		return unknown("step %s of workflow %s names no owner", s.Step, s.Workflow)
	case dl != nil:
		w.Reason, w.DeadLetter = ReasonDeadLettered, dl
		w.Text = deadLetterText(*dl)
		return w
	case trig == nil:
		return unknown("the event that entered %s is not stored", s.Step)
	case snap == nil || snap.err != nil:
		err := "not read"
		if snap != nil {
			err = snap.err.Error()
		}
		return unknown("queue health %s", err)
	case !snap.sampled:
		return unknown("no queue-health sample yet (a weft run with collector.lag.enabled takes them)")
	}
	w.SampledAt = snap.at
	if age := at.Sub(snap.at); age > snap.maxAge {
		return unknown("the newest queue-health sample is %s old (collector.lag.enabled off, or weft run stopped?)", ago(age))
	}
	if !snap.topics[trig.Topic] {
		return unknown("queue health does not measure topic %s (collector.topics)", trig.Topic)
	}
	for _, r := range snap.parts[partKey{trig.Topic, trig.Partition}] {
		if !snap.groupsOf.owns(s.Owner, r.Group) {
			continue
		}
		w.Groups = append(w.Groups, GroupPosition{Group: r.Group, State: r.GroupState, Condition: condition(r.GroupState),
			Members: r.Members, CommittedOffset: r.CommittedOffset, Read: r.CommittedOffset > trig.Offset,
			LagMessages: r.LagMessages, LagSeconds: r.LagSeconds})
	}
	slices.SortFunc(w.Groups, func(a, b GroupPosition) int { // unread first, furthest behind first
		return cmp.Or(cmpBool(a.Read, b.Read), cmp.Compare(b.LagMessages, a.LagMessages), strings.Compare(a.Group, b.Group))
	})
	switch {
	case len(w.Groups) > 0 && !w.Groups[0].Read:
		w.Reason, w.Text = ReasonNotDelivered, notDeliveredText(w.Groups[0], *trig)
	case len(w.Groups) > 0:
		w.Reason = ReasonNoAnswer
		names := make([]string, len(w.Groups))
		for i, g := range w.Groups {
			names[i] = g.Group
		}
		w.Text = fmt.Sprintf("%s read %s but %s emitted no %s and dead-lettered nothing: look at %s",
			strings.Join(names, ", "), trig, s.Owner, strings.Join(s.Expects, " or "), s.Owner)
	case trig.Service == s.Owner:
		w.Reason, w.SelfEmitted = ReasonNoAnswer, true
		w.Text = fmt.Sprintf("%s emitted %s (%s) itself and has not followed with %s: look at %s",
			s.Owner, trig.Type, trig, strings.Join(s.Expects, " or "), s.Owner)
	default:
		w.Reason, w.Readers = ReasonNoConsumer, snap.readers[trig.Topic]
		for _, g := range snap.gone[trig.Topic] {
			if snap.groupsOf.owns(s.Owner, g.Group) {
				w.Gone = append(w.Gone, GoneGroup{Group: g.Group, LastSeen: g.LastSeen.UTC()})
			}
		}
		w.Text = noConsumerText(s.Owner, trig.Topic, w.Readers, w.Gone, snap.groupsOf.configured(s.Owner))
	}
	return w
}

func notDeliveredText(g GroupPosition, trig Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s has not read %s yet", g.Group, trig)
	if g.CommittedOffset < 0 {
		fmt.Fprintf(&b, " (it never committed on %s/%d)", trig.Topic, trig.Partition)
	}
	fmt.Fprintf(&b, ": %s record", thousands(g.LagMessages))
	if g.LagMessages != 1 {
		b.WriteString("s")
	}
	if g.LagSeconds >= 0 {
		fmt.Fprintf(&b, ", %s behind", ago(time.Duration(g.LagSeconds*float64(time.Second))))
	}
	b.WriteString(", ")
	b.WriteString(groupStateText(g))
	return b.String()
}

// groupStateText is "group Stable with 2 members", "group Empty: no member
// is running", …
func groupStateText(g GroupPosition) string {
	members := ""
	if g.Members > 0 {
		members = " with " + strconv.Itoa(int(g.Members)) + " member"
		if g.Members > 1 {
			members += "s"
		}
	}
	switch g.Condition {
	case "stable":
		return "group Stable" + members
	case "rebalancing":
		return "group rebalancing (" + g.State + ")" + members
	case "empty":
		return "group Empty: no member is running"
	case "gone":
		return "group Dead: it is being removed"
	}
	if g.State == "" {
		return "group state unknown"
	}
	return "group " + g.State + members
}

func deadLetterText(dl DeadLetter) string {
	what := "the order's " + dl.Type
	if dl.OfTrigger {
		what = dl.Type
	}
	text := fmt.Sprintf("%s was dead-lettered to %s", what, dl.Record)
	if dl.Error != "" {
		return text + ": " + dl.Error
	}
	return text + " (no error header)"
}

func noConsumerText(owner, topic string, readers []string, gone []GoneGroup, configured bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "no consumer group of %s reads %s", owner, topic)
	for _, g := range gone {
		fmt.Fprintf(&b, "; %s read it until %s and is gone", g.Group, g.LastSeen.Format("2006-01-02 15:04:05Z"))
	}
	switch {
	case len(readers) == 0:
		b.WriteString("; no group reads it at all")
	case configured:
		fmt.Fprintf(&b, "; read by %s, none matching consistency.services.%s.groups", strings.Join(readers, ", "), owner)
	default:
		fmt.Fprintf(&b, "; read by %s (map %s's groups under consistency.services, or see weft services suggest)",
			strings.Join(readers, ", "), owner)
	}
	return b.String()
}

// errorHeaders are the headers dead-lettering frameworks put the error in,
// most specific first; failing those, any header whose name says error,
// exception or reason.
var errorHeaders = []string{
	"dlq-reason", "dlq-error", "error", "error-message", "x-exception-message",
	"kafka_dlt-exception-message", "__connect.errors.exception.message", "x-error",
}

// errorOf picks the error a dead-lettered record's headers give.
func errorOf(headers map[string]string) (name, value string) {
	lower := make(map[string]string, len(headers))
	for k := range headers {
		lower[strings.ToLower(k)] = k
	}
	for _, h := range errorHeaders {
		if k, ok := lower[h]; ok && headers[k] != "" {
			return k, headers[k]
		}
	}
	var keys []string
	for l, k := range lower {
		if headers[k] != "" && (strings.Contains(l, "error") || strings.Contains(l, "exception") || strings.Contains(l, "reason")) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "", ""
	}
	slices.Sort(keys)
	return keys[0], headers[keys[0]]
}

// signature is what a refreshed Why must differ in to be worth storing
// again before whyRefresh: the reason and who is involved, not the figures.
func (w Why) signature() string {
	var b strings.Builder
	b.WriteString(w.Reason + "|" + w.Missing + "|")
	if w.Trigger != nil {
		b.WriteString(w.Trigger.String())
	}
	if w.DeadLetter != nil {
		b.WriteString("|dlq " + w.DeadLetter.Record.String())
	}
	for _, g := range w.Groups {
		fmt.Fprintf(&b, "|%s %s %d %t", g.Group, g.State, g.Members, g.Read)
	}
	b.WriteString("|" + strings.Join(w.Readers, ","))
	for _, g := range w.Gone {
		b.WriteString("|gone " + g.Group)
	}
	return b.String()
}

// thousands writes n with thousands separators: 3,402.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// ago renders a duration as a person reads it: 45s, 12m, 1h05m, 2d03h.
func ago(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	default:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}
