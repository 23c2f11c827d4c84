package main

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/demo"
)

func TestConsumersNote(t *testing.T) {
	cfg := demo.DefaultConfig()
	m := &demo.Manifest{Consumers: cfg.ConsumerGroups()}
	assert.Equal(t, `The shop's services consume the live traffic in their own consumer groups:
  fulfillment-svc falls behind (it reads 0.5 records/s of payments)
  notifications-svc stops after 1m0s, for good
  orders-svc, inventory-svc, payments-svc, pickup-svc keep up
`, consumersNote(m))
	assert.Empty(t, consumersNote(&demo.Manifest{}), "no consumers, no note")
}

// TestDevDemoConsumers: `weft dev`'s demo, on kfake as dev runs it, reports
// the history with the services' groups, which consume while live traffic
// flows, and stops cleanly when told to.
func TestDevDemoConsumers(t *testing.T) {
	kf, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer kf.Close()
	cfg := DefaultConfig()
	cfg.Kafka.Brokers = kf.ListenAddrs()
	dcfg := demo.DefaultConfig()
	dcfg.Orders = 20
	dcfg.Live.Rate = 20
	dcfg.Consumers.StopAfter = 100 * time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	histDone := make(chan *demo.Manifest, 1)
	done := make(chan error, 1)
	go func() { done <- runDevDemo(ctx, dcfg, cfg, zerolog.Nop(), histDone) }()
	var m *demo.Manifest
	select {
	case m = <-histDone:
	case err := <-done:
		t.Fatalf("dev demo ended before its history: %v", err)
	}
	assert.Equal(t, dcfg.ConsumerGroups(), m.Consumers)

	cl, err := kgo.NewClient(kgo.SeedBrokers(kf.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	state := func(group string) string {
		d, err := adm.DescribeGroups(ctx, group)
		require.NoError(t, err)
		return d[group].State
	}
	stopped := m.GroupsWith(demo.BehaviorStopped)[0].Group
	require.Eventually(t, func() bool { return state(stopped) == "Empty" }, 10*time.Second, 50*time.Millisecond, stopped)
	for _, g := range m.GroupsWith(demo.BehaviorKeepsUp) {
		require.Eventually(t, func() bool { return state(g.Group) == "Stable" }, 10*time.Second, 50*time.Millisecond, g.Group)
	}
	cancel()
	require.NoError(t, <-done)
}
