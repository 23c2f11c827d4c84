package collector

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"
)

// membership is the tap's place in its consumer group as franz-go's
// rebalance callbacks report it: the partitions it owns and, while the
// group rebalances, since when. Ready reads it, and so do
// weft_collector_assigned_partitions and weft_collector_rebalances_total;
// every assignment, revocation and loss is one log line.
//
// The group rebalances incrementally (the cooperative-sticky balancer,
// collector.go): a session ends (revoked, with nothing), the member
// rejoins while it goes on consuming what it owns, gives up only what
// moves (revoked, with those partitions), and the next session begins
// (assigned, with what it gained, perhaps nothing). A member whose session
// failed (its session expired, its instance id was fenced) loses
// everything at once (lost).
type membership struct {
	clock   clockwork.Clock
	log     zerolog.Logger
	group   string
	metrics *metrics

	mu    sync.Mutex
	owned map[topicPartition]struct{}
	// rebalancing is when the group began rebalancing as this member saw
	// it (or when the member began to join); zero while a session runs.
	rebalancing time.Time
	joined      bool // a session began once
}

func newMembership(clock clockwork.Clock, log zerolog.Logger, group string, m *metrics) *membership {
	return &membership{clock: clock, log: log, group: group, metrics: m, owned: map[topicPartition]struct{}{}}
}

// joining marks the start: the member owns nothing until its first session.
func (m *membership) joining() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rebalancing = m.clock.Now()
}

// blocked is franz-go's signal that a rebalance callback waits for the
// pipeline to drain: the group is rebalancing.
func (m *membership) blocked() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.begin()
}

// begin marks the start of a rebalance, unless one is under way. m.mu held.
func (m *membership) begin() {
	if m.rebalancing.IsZero() {
		m.rebalancing = m.clock.Now()
	}
}

// assigned is the start of a session: the member owns added on top of what
// it kept.
func (m *membership) assigned(added map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.add(added)
	var took time.Duration
	if !m.rebalancing.IsZero() {
		took = m.clock.Since(m.rebalancing)
	}
	first := !m.joined
	m.rebalancing, m.joined = time.Time{}, true
	m.metrics.rebalances.WithLabelValues("assigned").Inc()
	m.metrics.assigned.Set(float64(len(m.owned)))
	ev := m.log.Info().Str("group", m.group).Int("added_count", n).Int("owned_count", len(m.owned)).Dur("rebalance", took)
	if n > 0 {
		ev = ev.Str("added", formatPartitions(added))
	}
	switch {
	case first && len(m.owned) == 0:
		ev.Msg("joined the consumer group, owning no partition: the other members own them all (a standby)")
	case first:
		ev.Msg("joined the consumer group: partitions assigned")
	default:
		ev.Msg("rebalance done: partitions assigned")
	}
}

// revoked is a partial end of the session: the member gives up gone (at
// the end of every session, often nothing) and keeps the rest.
func (m *membership) revoked(gone map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.begin()
	n := m.remove(gone)
	if n == 0 {
		return
	}
	m.metrics.rebalances.WithLabelValues("revoked").Inc()
	m.metrics.assigned.Set(float64(len(m.owned)))
	m.log.Info().Str("group", m.group).Str("revoked", formatPartitions(gone)).Int("revoked_count", n).
		Int("owned_count", len(m.owned)).Msg("partitions revoked: another member takes them over")
}

// lost is the end of a session that failed: the member owns nothing, and
// what it had may already be another member's.
func (m *membership) lost(gone map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.begin()
	n := m.remove(gone)
	clear(m.owned)
	m.metrics.assigned.Set(0)
	if n == 0 {
		return
	}
	m.metrics.rebalances.WithLabelValues("lost").Inc()
	m.log.Warn().Str("group", m.group).Str("lost", formatPartitions(gone)).Int("lost_count", n).
		Msg("partitions lost: the group session failed, and another member may own them already")
}

// add adds ps to the owned partitions and returns how many were new. m.mu held.
func (m *membership) add(ps map[string][]int32) int {
	n := 0
	for topic, parts := range ps {
		for _, p := range parts {
			tp := topicPartition{topic, p}
			if _, ok := m.owned[tp]; !ok {
				m.owned[tp] = struct{}{}
				n++
			}
		}
	}
	return n
}

// remove removes ps from the owned partitions and returns how many it
// owned. m.mu held.
func (m *membership) remove(ps map[string][]int32) int {
	n := 0
	for topic, parts := range ps {
		for _, p := range parts {
			tp := topicPartition{topic, p}
			if _, ok := m.owned[tp]; ok {
				delete(m.owned, tp)
				n++
			}
		}
	}
	return n
}

// notConsuming says why the member is not consuming what it should, or
// nil. tapping says whether any topic matches the tap's patterns (none:
// there is nothing to own).
//
// A member that owns no partition while the group rebalances (or before
// it first joined) is not consuming; nor is the group, when it has been
// rebalancing for longer than maxRebalance, even if this member keeps
// consuming what it owns: the partitions on the move are read by no one.
// A member that owns nothing in a running session is a standby — the
// group has more members than partitions — and is ready: were it not, a
// rolling update that first adds a pod would wait forever for that pod.
func (m *membership) notConsuming(tapping bool, maxRebalance time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !tapping || m.rebalancing.IsZero() {
		return nil
	}
	d := m.clock.Since(m.rebalancing).Round(100 * time.Millisecond)
	switch {
	case len(m.owned) == 0 && !m.joined:
		return fmt.Errorf("owns no partition yet: joining consumer group %q (for %s)", m.group, d)
	case len(m.owned) == 0:
		return fmt.Errorf("owns no partition: consumer group %q is rebalancing (for %s)", m.group, d)
	case d > maxRebalance:
		return fmt.Errorf("consumer group %q has been rebalancing for %s (collector.max_rebalance %s): the partitions on the move are consumed by no member; this one still consumes its %d",
			m.group, d, maxRebalance, len(m.owned))
	}
	return nil
}

// ownedCount is how many partitions the member owns.
func (m *membership) ownedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.owned)
}

// maxListed bounds the partitions a log line names.
const maxListed = 64

// formatPartitions names topic-partitions for a log line, sorted:
// "orders[0 1 2] payments[4]"; past maxListed partitions, how many more.
func formatPartitions(ps map[string][]int32) string {
	var b strings.Builder
	listed, total := 0, 0
	for _, topic := range slices.Sorted(maps.Keys(ps)) {
		parts := slices.Sorted(slices.Values(ps[topic]))
		total += len(parts)
		if len(parts) == 0 || listed >= maxListed {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(topic)
		b.WriteByte('[')
		for i, p := range parts {
			if listed >= maxListed {
				break
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprint(&b, p)
			listed++
		}
		b.WriteByte(']')
	}
	if total > listed {
		fmt.Fprintf(&b, " and %d more", total-listed)
	}
	return b.String()
}
