package benchkit

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Run is one measured path: how long it took to bring Events records
// through, and when the first one came out.
type Run struct {
	Events  int
	Elapsed time.Duration
	// FirstRow is the time from start to the first record (consume) or row
	// (queryable in ClickHouse); start-up and group join show here.
	FirstRow time.Duration
	// ClientCPU is the user+system CPU time of the client doing the work
	// (this process, or weft's); ServerCPU is ClickHouse's, from its
	// ProfileEvents. On a shared machine they are steadier than rates.
	ClientCPU, ServerCPU time.Duration
}

// Rate is events per second over the whole run.
func (r Run) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Events) / r.Elapsed.Seconds()
}

// BareConsume reads every record of topic from the start with a plain
// franz-go client — no group, no decoding, no storing; read_committed like
// weft — touching each value, until n records came. It is the ceiling of
// what any consumer of this broker can do on this machine.
func BareConsume(ctx context.Context, brokers []string, topic string, n int) (Run, error) {
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return Run{}, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	run := Run{Events: n}
	var got int
	var sum byte
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return run, fmt.Errorf("bare consume: %d of %d records: %w", got, n, err)
		}
		if err := fs.Err0(); err != nil {
			return run, fmt.Errorf("bare consume: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if got == 0 {
				run.FirstRow = time.Since(start)
			}
			got++
			if len(r.Value) > 0 {
				sum ^= r.Value[len(r.Value)-1]
			}
		})
	}
	run.Elapsed = time.Since(start)
	_ = sum
	return run, nil
}
