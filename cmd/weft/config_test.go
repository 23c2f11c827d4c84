package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The reference file documents every key: it must load and validate, and
// every field of Config must appear in it.
func TestExampleConfigLoads(t *testing.T) {
	c, err := LoadConfig("../../weft.example.yaml")
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:9092"}, c.Kafka.Brokers)
	assert.Len(t, c.Collector.Mapping, 1)
	assert.Len(t, c.Consistency.AllWorkflows(), 3)
	assert.Equal(t, 24*time.Hour, c.Consistency.Workflows[0].Steps[0].SLA)
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("WEFT_KAFKA_BROKERS", "a:1, b:2")
	t.Setenv("WEFT_CLICKHOUSE_PASSWORD", "s3cret")
	t.Setenv("WEFT_COLLECTOR_BATCH_FLUSH_INTERVAL", "2s")
	t.Setenv("WEFT_COLLECTOR_REDACTION_CARDS", "false")
	c, err := LoadConfig("")
	require.NoError(t, err)
	assert.Equal(t, []string{"a:1", "b:2"}, c.Kafka.Brokers)
	assert.Equal(t, "s3cret", c.ClickHouse.Password)
	assert.Equal(t, 2*time.Second, c.Collector.Batch.FlushInterval)
	require.NotNil(t, c.Collector.Redaction.Cards)
	assert.False(t, *c.Collector.Redaction.Cards)

	t.Setenv("WEFT_COLLECTOR_BATCH_MAX_RECORDS", "many")
	_, err = LoadConfig("")
	assert.ErrorContains(t, err, "WEFT_COLLECTOR_BATCH_MAX_RECORDS")
}
