// Package component is the one shape of weft's long-running parts — the
// tap, the queue-health monitor, the detector, the HTTP server — and the
// runner that starts, runs and stops them together (docs/architecture.md).
package component

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
)

// Component is a long-running part of weft. The lifecycle, as in the
// OpenTelemetry Collector:
//
//   - its constructor (New…) validates and builds, and does no I/O;
//   - Start connects to what the component needs and checks that it
//     answers: start-up fails fast, with one clear error;
//   - Run works until ctx ends, then finishes what it holds (the tap stores
//     and commits its buffered records) and returns nil. It returns an error
//     only when the component cannot go on; later failures that it can
//     survive are logged and counted, never returned;
//   - Shutdown releases what Start acquired. It is safe to call more than
//     once, after Run returned, or without Run ever running.
type Component interface {
	Start(ctx context.Context) error
	Run(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// Named is a component and the name that prefixes its errors.
type Named struct {
	Name string
	Component
}

// Runner starts, runs and stops a set of components as one.
type Runner struct {
	// Components, in start order; they are shut down in reverse.
	Components []Named
	// StopTimeout bounds how long Run waits, once its context ended or a
	// component failed, for the others' Run to finish (draining) and then
	// for their Shutdown. Zero means 30 s.
	StopTimeout time.Duration
	// OnStarted, when set, is called once every component started.
	OnStarted func()
}

// Run starts every component in order; when one fails to start it shuts
// down those already started and returns that error. It then runs them all
// until ctx ends or one's Run returns an error, which stops the others; it
// shuts every component down and returns the first Run error (nil on a
// clean stop) joined with every shutdown error, each prefixed with its
// component's name.
func (r Runner) Run(ctx context.Context) error {
	stop := r.StopTimeout
	if stop <= 0 {
		stop = 30 * time.Second
	}
	for i, c := range r.Components {
		// A start error is returned as it is: it already says what did
		// not answer ("kafka unreachable: …"), the one line users see.
		if err := c.Start(ctx); err != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stop)
			defer cancel()
			return errors.Join(err, shutdown(sctx, r.Components[:i]))
		}
	}
	if r.OnStarted != nil {
		r.OnStarted()
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, c := range r.Components {
		g.Go(func() error {
			if err := c.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
			return nil
		})
	}
	waited := make(chan error, 1)
	go func() { waited <- g.Wait() }()

	// Bound the drain: once the components are told to stop, they have
	// StopTimeout to return.
	var runErr error
	select {
	case runErr = <-waited:
	case <-gctx.Done():
		select {
		case runErr = <-waited:
		case <-time.After(stop):
			runErr = fmt.Errorf("components did not stop within %s of being told to", stop)
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stop)
	defer cancel()
	return errors.Join(runErr, shutdown(sctx, r.Components))
}

// shutdown shuts cs down in reverse order and joins their errors.
func shutdown(ctx context.Context, cs []Named) error {
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		if err := cs[i].Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s shutdown: %w", cs[i].Name, err))
		}
	}
	return errors.Join(errs...)
}
