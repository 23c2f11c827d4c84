package replay

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/kafkaconn"
)

// The detector reads the replay headers by the store's names.
func TestHeaderNamesMatchTheStore(t *testing.T) {
	assert.Equal(t, HeaderJob, chstore.HeaderReplayJob)
	assert.Equal(t, HeaderOriginalTopic, chstore.HeaderReplayOriginalTopic)
	assert.Equal(t, HeaderOriginalPartition, chstore.HeaderReplayOriginalPartition)
	assert.Equal(t, HeaderOriginalOffset, chstore.HeaderReplayOriginalOffset)
}

func TestStampKeepsTheRecordAndReplacesEarlierReplayHeaders(t *testing.T) {
	ts := time.UnixMilli(1_700_000_000_123)
	orig := &kgo.Record{Topic: "payments.dlq", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte("v"), Timestamp: ts,
		Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("tp")}, {Key: HeaderJob, Value: []byte("rpl-old")}}}
	r := Stamp{Job: "rpl-0123456789abcdef", Operator: "alice"}.replayed(orig, 7, "payments")
	assert.Equal(t, "payments", r.Topic)
	assert.Equal(t, []byte("k"), r.Key)
	assert.Equal(t, []byte("v"), r.Value)
	got := map[string]string{}
	for _, h := range r.Headers {
		_, dup := got[h.Key]
		require.False(t, dup, "header %s twice", h.Key)
		got[h.Key] = string(h.Value)
	}
	assert.Equal(t, map[string]string{"traceparent": "tp", HeaderJob: "rpl-0123456789abcdef", HeaderSeq: "7",
		HeaderOriginalTopic: "payments.dlq", HeaderOriginalPartition: "2", HeaderOriginalOffset: "41",
		HeaderOriginalTimestamp: "1700000000123", HeaderOperator: "alice"}, got)
	job, seq, ok := JobSeq(r)
	assert.True(t, ok)
	assert.Equal(t, "rpl-0123456789abcdef", job)
	assert.Equal(t, uint64(7), seq)
}

func TestConfig(t *testing.T) {
	c := Default()
	require.NoError(t, c.Validate())
	c.Enabled = true
	assert.ErrorContains(t, c.Validate(), "allow: required when replay.enabled")
	c.Allow = []string{"("}
	assert.ErrorContains(t, c.Validate(), "allow[0]")
	c.Allow, c.BatchRecords, c.Rate = []string{"payments"}, 0, -1
	err := c.Validate()
	assert.ErrorContains(t, err, "batch_records")
	assert.ErrorContains(t, err, "rate")

	_, err = New(Default(), Settings{})
	assert.ErrorIs(t, err, ErrRefused, "disabled is refused before any I/O")

	allow, err := compileAllow([]string{"payments", "orders-.*"})
	require.NoError(t, err)
	assert.True(t, allow.allows("payments"))
	assert.False(t, allow.allows("payments.dlq"), "anchored: a pattern matches whole names")
	assert.True(t, allow.allows("orders-eu"))
}

func TestKafkaConfigDefaultsToTheTaps(t *testing.T) {
	tap := kafkaconn.Default()
	tap.Brokers = []string{"a:9092"}
	tap.SASL = kafkaconn.SASL{Mechanism: "plain", Username: "tap", Password: "p"}
	c := Default()
	k := c.KafkaConfig(tap)
	assert.Equal(t, []string{"a:9092"}, k.Brokers)
	assert.Equal(t, "tap", k.SASL.Username)
	assert.Equal(t, "weft-replay", k.ClientID)
	c.Kafka.SASL = kafkaconn.SASL{Mechanism: "scram-sha-512", Username: "replay"}
	c.Kafka.Brokers = []string{"b:9092"}
	k = c.KafkaConfig(tap)
	assert.Equal(t, []string{"b:9092"}, k.Brokers)
	assert.Equal(t, kafkaconn.SASL{Mechanism: "scram-sha-512", Username: "replay"}, k.SASL, "sasl as a whole block: no password of the tap's")
}

func TestEvidencePositions(t *testing.T) {
	ev := `{"count":2,"items":[{"evidence":{"records":[{"where":"payments/0@5"},{"where":"payments/1@9"}]}},{"evidence":{"where":"payments/0@5"}}]}`
	assert.Equal(t, []Position{{"payments", 0, 5}, {"payments", 1, 9}}, evidencePositions(ev))
	assert.Empty(t, evidencePositions(`{"reason":"no-answer"}`))
	assert.Empty(t, evidencePositions(`not json`))
}
