package collector

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/event"
)

// A batch commits, per partition, the offset after its last record with
// that record's leader epoch; its token depends only on the offset ranges
// it holds and their epochs, so every retry of it carries the same one.
func TestBatchOffsetsAndToken(t *testing.T) {
	b := newBatch()
	records := []*kgo.Record{
		{Topic: "a", Partition: 0, Offset: 10, LeaderEpoch: 3},
		{Topic: "a", Partition: 0, Offset: 11, LeaderEpoch: 3},
		{Topic: "a", Partition: 1, Offset: 5, LeaderEpoch: 1},
		{Topic: "b", Partition: 0, Offset: 7, LeaderEpoch: 0},
		{Topic: "a", Partition: 0, Offset: 12, LeaderEpoch: 4},
	}
	for _, r := range records {
		b.note(r)
		b.events = append(b.events, event.Event{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset})
	}
	assert.Equal(t, map[string]map[int32]kgo.EpochOffset{
		"a": {0: {Epoch: 4, Offset: 13}, 1: {Epoch: 1, Offset: 6}},
		"b": {0: {Epoch: 0, Offset: 8}},
	}, b.offsets)

	tok := b.token()
	assert.Equal(t, tok, b.token(), "cached")
	same := newBatch()
	for i := len(b.events) - 1; i >= 0; i-- { // another order, same ranges
		same.note(records[i])
		same.events = append(same.events, b.events[i])
	}
	assert.Equal(t, tok, same.token())
	again := newBatch() // the same offsets again under a new leader epoch
	for _, r := range records {
		again.note(&kgo.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, LeaderEpoch: r.LeaderEpoch + 1})
		again.events = append(again.events, event.Event{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset})
	}
	assert.NotEqual(t, tok, again.token(), "offsets Kafka gave again after a truncation")

	b.reset()
	assert.Zero(t, b.len())
	assert.Empty(t, b.offsets)
	b.events = append(b.events, event.Event{Topic: "a", Partition: 0, Offset: 14})
	assert.NotEqual(t, tok, b.token(), "a reset batch gets a new token")
}
