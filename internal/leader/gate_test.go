package leader

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weft-sh/weft/internal/kafkaconn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// offline is an elector whose leadership the test sets by hand, as Run
// would: lead with the time a confirmed request was sent, unlead, stop.
func offline(t *testing.T, clock clockwork.Clock) *Elector {
	t.Helper()
	e, err := New(Config{Enabled: true, Group: "g", SessionTimeout: 6 * time.Second}, kafkaconn.Default(),
		Settings{Logger: zerolog.Nop(), Clock: clock})
	require.NoError(t, err)
	return e
}

// TestFence: a leader whose heartbeats go unconfirmed stops leading two
// thirds of a session after it sent the last confirmed one (4 s of 6 s),
// on its own clock; each confirmation moves that on; an answer that comes
// after the deadline does not make it leader.
func TestFence(t *testing.T) {
	clock := clockwork.NewFakeClock()
	e := offline(t, clock)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { e.fence(ctx) })
	defer func() { cancel(); wg.Wait() }()
	step := func(d time.Duration) {
		t.Helper()
		require.NoError(t, clock.BlockUntilContext(ctx, 1))
		clock.Advance(d)
		time.Sleep(5 * time.Millisecond) // let the fence read the ticker
	}

	sent := clock.Now()
	e.lead(sent, "test")
	require.True(t, e.Leading())
	step(3900 * time.Millisecond)
	assert.True(t, e.Leading(), "3.9 s after the last confirmed request: leads")
	e.lead(sent.Add(3*time.Second), "heartbeat") // a heartbeat sent at 3 s answered
	step(3 * time.Second)
	assert.True(t, e.Leading(), "6.9 s: 3.9 s after the heartbeat sent at 3 s")
	for range 4 {
		step(100 * time.Millisecond)
	}
	require.Eventually(t, func() bool { return !e.Leading() }, time.Second, time.Millisecond,
		"past 4 s after the last confirmed heartbeat: fenced")

	e.lead(clock.Now().Add(-5*time.Second), "late answer")
	assert.False(t, e.Leading(), "an answer to a request sent 5 s ago is too late to lead on")
	e.lead(clock.Now(), "heartbeats answered again")
	assert.True(t, e.Leading(), "a fenced leader whose heartbeats are answered again leads again")
}

// step is a component whose Run the test watches.
type step struct {
	runs     atomic.Int32
	running  atomic.Bool
	resigned atomic.Int32
	fail     atomic.Bool // Run returns an error at once
}

func (s *step) Start(context.Context) error    { return nil }
func (s *step) Shutdown(context.Context) error { return nil }
func (s *step) Resign()                        { s.resigned.Add(1) }
func (s *step) Run(ctx context.Context) error {
	s.runs.Add(1)
	if s.fail.Load() {
		return errors.New("broken")
	}
	s.running.Store(true)
	<-ctx.Done()
	s.running.Store(false)
	return nil
}

// TestGate: the gated Run runs only while the replica leads, is cancelled
// when it stops leading (and its cluster metrics cleared), runs again
// when it leads again, and the elector's stop waits for it; an error
// while leading is the component's failure.
func TestGate(t *testing.T) {
	e := offline(t, clockwork.NewRealClock())
	s := &step{}
	g := Gate(e, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- g.Run(ctx) }()

	time.Sleep(50 * time.Millisecond)
	assert.Zero(t, s.runs.Load(), "not leading: not run")
	e.lead(time.Now(), "test")
	require.Eventually(t, s.running.Load, time.Second, time.Millisecond)
	e.unlead("test")
	require.Eventually(t, func() bool { return !s.running.Load() && s.resigned.Load() == 1 }, time.Second, time.Millisecond)
	e.lead(time.Now(), "test")
	require.Eventually(t, func() bool { return s.running.Load() && s.runs.Load() == 2 }, time.Second, time.Millisecond, "runs again")

	e.stop("stopping")
	e.awaitHeld()
	assert.False(t, s.running.Load(), "stop waits for the gated Run to return")
	assert.EqualValues(t, 2, s.resigned.Load())
	cancel()
	require.NoError(t, <-errc)

	// A Run that fails while its replica leads fails the gate.
	e2 := offline(t, clockwork.NewRealClock())
	s2 := &step{}
	s2.fail.Store(true)
	e2.lead(time.Now(), "test")
	require.EqualError(t, Gate(e2, s2).Run(context.Background()), "broken")
}

// TestDisabled: with leader.enabled false the replica leads until it stops.
func TestDisabled(t *testing.T) {
	e, err := New(Config{Enabled: false, SessionTimeout: 6 * time.Second}, kafkaconn.Default(), Settings{Logger: zerolog.Nop()})
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	require.Eventually(t, e.Leading, time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	assert.False(t, e.Leading())
	require.NoError(t, e.Shutdown(context.Background()))
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"default", Default().WithGroup("weft-tap"), ""},
		{"short session", Config{Enabled: true, Group: "g", SessionTimeout: 500 * time.Millisecond},
			"session_timeout: must be between 1s and 30m"},
		{"no group", Config{Enabled: true, SessionTimeout: 6 * time.Second}, "group: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, kafkaconn.Default(), Settings{})
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
	assert.Equal(t, "weft-tap.leader", Default().WithGroup("weft-tap").Group)
	assert.Equal(t, "mine", Config{Group: "mine"}.WithGroup("weft-tap").Group)
}
