package scalegen

import (
	"fmt"
	"time"

	"github.com/weft-sh/weft/internal/config"
)

// Version names the generator's output: bump it whenever the SQL changes
// what is generated, so a database loaded by an older generator is not
// reused (the version is part of Workload.Database).
const Version = 1

// Workload says what to generate. The zero value of every field but Orders
// takes its default.
type Workload struct {
	// Orders is how many orders are generated. Required.
	Orders int
	// Days is the span the orders start in, ending at the watermark. Default 30.
	Days int
	// Seed makes the history reproducible: same workload, same rows. Default 1.
	Seed uint64
	// ChunkOrders is how many orders one INSERT … SELECT generates, which
	// bounds the server's memory and keeps each statement within the
	// client's read timeout (5 min). Default 250,000.
	ChunkOrders int
}

// Mix of the generated history, fixed for a Version.
const (
	// StuckFraction of orders are cut after one of their events and never
	// continue: stuck once that event is older than its step's SLA.
	StuckFraction = 0.015
	// Fault fractions, among orders that finished an hour before the watermark.
	GapFraction        = 0.002
	DupFraction        = 0.003
	OutOfOrderFraction = 0.002
	// Paths: completed 75 %, pickup expired 18 %, declined 5.5 %, failed 1.5 %.
	pathCompleted = 0.75
	pathExpired   = 0.93
	pathDeclined  = 0.985
	// asyncPercent of completed and expired orders pay asynchronously.
	asyncPercent = 25
)

// withDefaults fills the zero fields.
func (w Workload) withDefaults() Workload {
	if w.Days == 0 {
		w.Days = 30
	}
	if w.Seed == 0 {
		w.Seed = 1
	}
	if w.ChunkOrders == 0 {
		w.ChunkOrders = 250_000
	}
	return w
}

// Validate reports every problem at once.
func (w Workload) Validate() error {
	var p config.Problems
	if w.Orders <= 0 {
		p.Addf("orders", "must be positive, got %d", w.Orders)
	}
	if w.Days < 0 {
		p.Addf("days", "must not be negative, got %d", w.Days)
	}
	if w.ChunkOrders < 0 {
		p.Addf("chunk_orders", "must not be negative, got %d", w.ChunkOrders)
	}
	return p.Err()
}

// Database is the database the workload is loaded into, named after what
// decides its rows (orders, days, seed, generator version) so that a
// database of that name can be reused.
func (w Workload) Database() string {
	w = w.withDefaults()
	return fmt.Sprintf("weft_scale_n%d_d%d_s%d_v%d", w.Orders, w.Days, w.Seed, Version)
}

// Span is how long before the watermark the first order starts.
func (w Workload) Span() time.Duration {
	return time.Duration(w.withDefaults().Days) * 24 * time.Hour
}
