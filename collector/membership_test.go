package collector

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testMembership(t *testing.T) (*membership, *clockwork.FakeClock, *bytes.Buffer) {
	t.Helper()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	var logs bytes.Buffer
	m := newMembership(clock, zerolog.New(&logs), "weft-tap", newMetrics(nil))
	return m, clock, &logs
}

// TestMembershipReadiness walks a member through its group's life and
// checks what Ready would say at each step, on an injected clock.
func TestMembershipReadiness(t *testing.T) {
	const max = 30 * time.Second
	m, clock, logs := testMembership(t)

	m.joining()
	require.NoError(t, m.notConsuming(false, max), "no topic to tap: nothing to own, ready")
	clock.Advance(1500 * time.Millisecond)
	assert.EqualError(t, m.notConsuming(true, max), `owns no partition yet: joining consumer group "weft-tap" (for 1.5s)`)

	m.assigned(map[string][]int32{"orders": {2, 0, 1}, "payments": {0}})
	require.NoError(t, m.notConsuming(true, max), "a session runs and the member owns partitions")
	assert.Equal(t, 4.0, testutil.ToFloat64(m.metrics.assigned))
	assert.Contains(t, logs.String(), `"added":"orders[0 1 2] payments[0]"`)
	assert.Contains(t, logs.String(), `"message":"joined the consumer group: partitions assigned"`)

	// A member joins: the session ends (a revoke of nothing), and this
	// member goes on consuming what it owns while the group rebalances.
	m.revoked(map[string][]int32{})
	clock.Advance(max)
	require.NoError(t, m.notConsuming(true, max), "rebalancing for exactly the threshold is still ready")
	m.revoked(map[string][]int32{"orders": {2}})
	assert.Equal(t, 3, m.ownedCount())
	clock.Advance(time.Second)
	assert.EqualError(t, m.notConsuming(true, max),
		`consumer group "weft-tap" has been rebalancing for 31s (collector.max_rebalance 30s): the partitions on the move are consumed by no member; this one still consumes its 3`,
		"the threshold counts from the start of the rebalance, not from the last revoke")
	m.assigned(nil)
	require.NoError(t, m.notConsuming(true, max), "the next session began")
	assert.Contains(t, logs.String(), `"rebalance":31000`)

	// Its session expires: everything is lost at once.
	m.lost(map[string][]int32{"orders": {0, 1}, "payments": {0}})
	assert.Zero(t, m.ownedCount())
	assert.Zero(t, testutil.ToFloat64(m.metrics.assigned))
	assert.EqualError(t, m.notConsuming(true, max), `owns no partition: consumer group "weft-tap" is rebalancing (for 0s)`, "not ready at once")

	// Back in a session with nothing: a standby (more members than
	// partitions) is ready.
	clock.Advance(2 * time.Second)
	m.assigned(map[string][]int32{})
	require.NoError(t, m.notConsuming(true, max))

	assert.Equal(t, 3.0, testutil.ToFloat64(m.metrics.rebalances.WithLabelValues("assigned")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.metrics.rebalances.WithLabelValues("revoked")), "a revoke of nothing is not an event")
	assert.Equal(t, 1.0, testutil.ToFloat64(m.metrics.rebalances.WithLabelValues("lost")))
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	assert.Len(t, lines, 5, "one line per event (3 assigned, 1 revoked, 1 lost):\n%s", logs)
}

// TestMembershipBlockedStartsTheRebalance: the signal that a rebalance
// callback waits for the pipeline is the start of the rebalance.
func TestMembershipBlockedStartsTheRebalance(t *testing.T) {
	m, clock, _ := testMembership(t)
	m.joining()
	m.assigned(map[string][]int32{"orders": {0}})
	m.blocked()
	clock.Advance(10 * time.Second)
	m.revoked(nil) // the session ends once the pipeline drained
	clock.Advance(25 * time.Second)
	assert.ErrorContains(t, m.notConsuming(true, 30*time.Second), "rebalancing for 35s")
}

func TestFormatPartitions(t *testing.T) {
	assert.Equal(t, "", formatPartitions(nil))
	assert.Equal(t, "a[0 3] b[1]", formatPartitions(map[string][]int32{"b": {1}, "a": {3, 0}, "c": {}}))
	many := map[string][]int32{}
	for p := range int32(100) {
		many["t"] = append(many["t"], p)
	}
	s := formatPartitions(many)
	assert.True(t, strings.HasPrefix(s, "t[0 1 2 "), s)
	assert.True(t, strings.HasSuffix(s, " 63] and 36 more"), s)
}
