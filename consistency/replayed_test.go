package consistency

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A replay stored with a payload hash of its own (the masking policy
// changed between the original's ingest and the replay's) is the same
// event: no duplicate. The same record without replay headers is one.
func TestReplayIsNotADuplicate(t *testing.T) {
	var c chainB
	c.add("OrderPlaced", "orders", -1)
	c.add("PaymentAuthorized", "payments", 0)
	orig := c.evs[1]
	again := orig
	again.Topic, again.Partition, again.Offset = "payments", 0, 900
	again.PayloadHash = "rehashed"
	again.EventTime = orig.EventTime

	plain := append(append([]ChainEvent{}, c.evs...), again)
	require.Contains(t, kinds(CheckOrder(nil, plain, t0, Windows{})), KindDuplicate, "a second payload for one event id without replay headers is a duplicate")

	again.ReplayOf, again.ReplayJob = "payments/0@1", "rpl-0123456789abcdef"
	replayed := append(append([]ChainEvent{}, c.evs...), again)
	assert.NotContains(t, kinds(CheckOrder(nil, replayed, t0, Windows{})), KindDuplicate)

	// A replay naming a record that is not in the order's chain stands
	// for its original: it is still compared with the others.
	again.ReplayOf = "payments/0@77"
	stray := append(append([]ChainEvent{}, c.evs...), again)
	assert.Contains(t, kinds(CheckOrder(nil, stray, t0, Windows{})), KindDuplicate)
}

// A replayed record without an event id is named, as its original was,
// by the original's coordinates.
func TestReplayIdentity(t *testing.T) {
	e := ChainEvent{Topic: "payments", Partition: 2, Offset: 40, EventID: "payments/2/40", ReplayOf: "payments.dlq/0@7"}
	assert.Equal(t, "payments.dlq/0/7", e.replayIdentity().EventID)
	e.EventID = "evt-1"
	assert.Equal(t, "evt-1", e.replayIdentity().EventID, "an event id of the record's own is kept")
	plain := ChainEvent{Topic: "payments", Partition: 2, Offset: 40, EventID: "payments/2/40"}
	assert.Equal(t, "payments/2/40", plain.replayIdentity().EventID)
}
