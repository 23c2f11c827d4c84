package queuehealth

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/kafkaconn"
)

// TestResign: a replica that stops leading (docs/replicas.md) stops
// exporting the queue gauges, so sums over replicas count the leader's.
func TestResign(t *testing.T) {
	m, err := New(Default(), Topics{Include: []string{"orders"}}, kafkaconn.Default(), nil,
		Settings{Logger: zerolog.Nop(), Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	m.metrics.publish([]healthRow{{Group: "g", Topic: "orders", Lag: 3, LagSeconds: 1, Committed: 5},
		{Topic: "orders", Lag: 9}}, Report{})
	require.Positive(t, testutil.CollectAndCount(m.metrics))
	m.Resign()
	assert.Zero(t, testutil.CollectAndCount(m.metrics))
}
