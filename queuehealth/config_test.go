package queuehealth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/kafkaconn"
)

func TestDefaultDLQPattern(t *testing.T) {
	re := wholeName(Default().DLQPattern)
	for name, want := range map[string]bool{
		"payments.dlq": true, "orders-dead-letter": true, "fulfillment_deadletter": true, "payments.requests.dlq": true,
		"payments": false, "dlq": false, "payments.dlq.retry": false, "orders.dlqx": false, "mydlq": false,
	} {
		assert.Equal(t, want, matches(re, name), name)
	}
}

// TestLagConfigValidate: every problem of the block is reported at once,
// named by its key in the collector block.
func TestLagConfigValidate(t *testing.T) {
	c := Default()
	require.NoError(t, c.Validate())
	c.Interval = 100 * time.Millisecond
	c.ReadTimeout = 0
	c.DLQPattern = "(("
	c.Groups.Include = nil
	c.Groups.Exclude = []string{"[z-a]"}
	_, err := New(c, Topics{Include: []string{".*"}}, kafkaconn.Default(), nil, Settings{})
	require.Error(t, err)
	for _, path := range []string{"lag.interval", "lag.read_timeout", "lag.dlq_pattern", "lag.groups.include", "lag.groups.exclude[0]"} {
		assert.Contains(t, err.Error(), path+":")
	}

	_, err = New(Default(), Topics{Include: []string{"(("}}, kafkaconn.Default(), nil, Settings{})
	assert.ErrorContains(t, err, "topics.include[0]:", "the tapped topics are checked too")
}
