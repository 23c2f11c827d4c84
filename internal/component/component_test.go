package component

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake records what the runner did to it.
type fake struct {
	name     string
	startErr error
	runErr   error         // returned by Run at once when set
	block    chan struct{} // when set, Run ignores ctx until it is closed
	events   *[]string
	mu       *sync.Mutex
}

func (f *fake) note(s string) {
	f.mu.Lock()
	*f.events = append(*f.events, f.name+" "+s)
	f.mu.Unlock()
}

func (f *fake) Start(context.Context) error {
	f.note("start")
	return f.startErr
}

func (f *fake) Run(ctx context.Context) error {
	if f.runErr != nil {
		f.note("fail")
		return f.runErr
	}
	if f.block != nil {
		<-f.block
	} else {
		<-ctx.Done()
	}
	f.note("drained")
	return nil
}

func (f *fake) Shutdown(context.Context) error { f.note("shutdown"); return nil }

func fakes(names ...string) ([]*fake, []Named, *[]string) {
	var events []string
	mu := &sync.Mutex{}
	var fs []*fake
	var ns []Named
	for _, n := range names {
		f := &fake{name: n, events: &events, mu: mu}
		fs = append(fs, f)
		ns = append(ns, Named{Name: n, Component: f})
	}
	return fs, ns, &events
}

func TestRunnerCleanStop(t *testing.T) {
	_, ns, events := fakes("a", "b")
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	errc := make(chan error)
	go func() { errc <- Runner{Components: ns, OnStarted: func() { close(started) }}.Run(ctx) }()
	<-started
	cancel()
	require.NoError(t, <-errc)
	assert.Equal(t, []string{"a start", "b start"}, (*events)[:2])
	assert.ElementsMatch(t, []string{"a drained", "b drained"}, (*events)[2:4])
	assert.Equal(t, []string{"b shutdown", "a shutdown"}, (*events)[4:], "shut down in reverse start order, after every Run returned")
}

func TestRunnerStartFailure(t *testing.T) {
	fs, ns, events := fakes("a", "b", "c")
	fs[1].startErr = errors.New("kafka unreachable")
	err := Runner{Components: ns}.Run(context.Background())
	require.EqualError(t, err, "kafka unreachable", "a start error is the one line users see, as the component said it")
	assert.Equal(t, []string{"a start", "b start", "a shutdown"}, *events, "c never starts, a is released, nothing runs")
}

func TestRunnerFatalErrorStopsTheOthers(t *testing.T) {
	fs, ns, events := fakes("a", "b")
	fs[1].runErr = errors.New("schema mismatch")
	err := Runner{Components: ns}.Run(context.Background())
	require.EqualError(t, err, "b: schema mismatch")
	assert.Contains(t, *events, "a drained", "a's Run was told to stop")
	assert.Equal(t, []string{"b shutdown", "a shutdown"}, (*events)[len(*events)-2:])
}

func TestRunnerBoundsTheDrain(t *testing.T) {
	fs, ns, _ := fakes("stubborn")
	fs[0].block = make(chan struct{})
	defer close(fs[0].block)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Runner{Components: ns, StopTimeout: 50 * time.Millisecond}.Run(ctx)
	require.ErrorContains(t, err, "did not stop within 50ms")
}
