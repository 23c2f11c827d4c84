package leader

import (
	"context"
	"errors"

	"github.com/weft-sh/weft/internal/component"
)

// Resigner is a gated component whose metrics describe the whole cluster
// (the detector's open findings, queue health): only the leader reports
// them. Resign clears them once the component's Run returned because its
// replica stopped leading, so an alert that sums over replicas counts the
// leader's alone.
type Resigner interface {
	Resign()
}

// Gated is a component that runs only while its replica leads.
type Gated struct {
	e     *Elector
	inner component.Component
}

var _ component.Component = (*Gated)(nil)

// Gate wraps c so that its Run runs only while e leads: it starts when
// this replica becomes leader, its context ends when it stops leading,
// and it runs again when it leads again. c's Run must therefore tolerate
// being called again after it returned, and read what another replica
// may have changed meanwhile (a cursor stored in ClickHouse) afresh.
// Start and Shutdown are c's, on every replica: a replica that takes
// over is connected already.
func Gate(e *Elector, c component.Component) *Gated { return &Gated{e: e, inner: c} }

// Start starts the inner component.
func (g *Gated) Start(ctx context.Context) error { return g.inner.Start(ctx) }

// Shutdown shuts the inner component down.
func (g *Gated) Shutdown(ctx context.Context) error { return g.inner.Shutdown(ctx) }

// Run runs the inner component's Run in each term this replica leads,
// until ctx ends. An error the inner Run returns while this replica
// still leads is returned (the component cannot go on); one returned as
// the term ended is the term's end.
func (g *Gated) Run(ctx context.Context) error {
	for {
		term, release, ok := g.e.hold(ctx)
		if !ok {
			return nil
		}
		rctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(term, cancel)
		err := g.inner.Run(rctx)
		if err == nil {
			<-rctx.Done() // done for this term (e.g. disabled): wait for the next
		}
		stop()
		cancel()
		lost := term.Err() != nil && ctx.Err() == nil
		if r, ok := g.inner.(Resigner); ok && lost {
			r.Resign()
		}
		release()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !lost && !errors.Is(err, context.Canceled):
			return err
		}
	}
}
