package demo

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

// TestConsumersLifecycle runs the consumers on the in-process broker `weft
// dev` uses (kfake): a new group starts at the end of its topics (its
// start is committed before it joins), the stopping service leaves its
// group, and Shutdown leaves the others and is idempotent. Queue health
// over live traffic is TestConsumersQueueHealth, on the real broker.
func TestConsumersLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t)
	c, cl := fakeKafka(t)
	defer c.Close()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cfg := testConfig()
	cfg.Orders = 30
	cfg.Consumers.StopAfter = 200 * time.Millisecond
	g, err := New(cfg, cl, zerolog.Nop())
	require.NoError(t, err)
	require.NoError(t, g.EnsureTopics(ctx, kadm.NewClient(cl), 2))
	_, err = g.RunHistory(ctx)
	require.NoError(t, err)

	cons, err := NewConsumers(cfg, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, zerolog.Nop())
	require.NoError(t, err)
	assert.Equal(t, cfg.ConsumerGroups(), cons.Groups())
	require.NoError(t, cons.Start(ctx))
	adm := kadm.NewClient(cl)
	for _, grp := range cons.Groups() {
		ends, err := adm.ListEndOffsets(ctx, grp.Topics...)
		require.NoError(t, err)
		got, err := adm.FetchOffsets(ctx, grp.Group)
		require.NoError(t, err)
		ends.Each(func(lo kadm.ListedOffset) {
			o, ok := got.Lookup(lo.Topic, lo.Partition)
			assert.True(t, ok && o.At == lo.Offset, "%s starts at the end of %s/%d", grp.Group, lo.Topic, lo.Partition)
		})
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cons.Run(runCtx) }()
	state := func(group string) string {
		d, err := adm.DescribeGroups(ctx, group)
		require.NoError(t, err)
		return d[group].State
	}
	stopping := cfg.Consumers.GroupPrefix + cfg.Consumers.Stopping + "-svc"
	require.Eventually(t, func() bool { return state(stopping) == "Empty" }, 10*time.Second, 50*time.Millisecond)
	for _, grp := range cons.Groups() {
		if grp.Group != stopping {
			require.Eventually(t, func() bool { return state(grp.Group) == "Stable" }, 10*time.Second, 50*time.Millisecond, grp.Group)
		}
	}
	stop()
	require.NoError(t, <-done)
	require.NoError(t, cons.Shutdown(ctx))
	require.NoError(t, cons.Shutdown(ctx), "a second Shutdown is harmless")
	for _, grp := range cons.Groups() {
		assert.Equal(t, "Empty", state(grp.Group), grp.Group)
	}
}

// TestConsumersDisabled: with consumers.enabled false nothing joins.
func TestConsumersDisabled(t *testing.T) {
	cfg := testConfig()
	cfg.Consumers.Enabled = false
	cons, err := NewConsumers(cfg, nil, zerolog.Nop())
	require.NoError(t, err)
	assert.Empty(t, cons.Groups())
	ctx := context.Background()
	require.NoError(t, cons.Start(ctx))
	require.NoError(t, cons.Run(ctx))
	require.NoError(t, cons.Shutdown(ctx))
}

func TestThrottle(t *testing.T) {
	thr := newThrottle(4)
	thr.tokens, thr.last = 0, time.Now()
	began := time.Now()
	n, err := thr.wait(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.GreaterOrEqual(t, time.Since(began), 200*time.Millisecond, "a quarter second per record at 4 a second")
	thr.took(n)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = thr.wait(ctx)
	assert.ErrorIs(t, err, context.Canceled)
}
