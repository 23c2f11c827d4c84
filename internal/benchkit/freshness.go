package benchkit

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Freshness is produce-to-queryable latency at a steady produce rate.
type Freshness struct {
	// Rate is the produce rate aimed at, Achieved the one reached.
	Rate, Achieved float64
	Events         int
	P50, P99, Max  time.Duration
	// Poll is the interval ClickHouse was polled at: each latency is an
	// upper bound, at most Poll (plus one query) above the truth.
	Poll time.Duration
}

// FreshnessConfig says what MeasureFreshness produces and where it looks.
type FreshnessConfig struct {
	Brokers []string
	// Topic must exist and be tapped by the running weft.
	Topic string
	// Database is weft's database, whose events table is polled.
	Database string
	Rate     int
	Duration time.Duration
	// Workload supplies the records (its Records is ignored).
	Workload Workload
}

const freshnessPoll = 50 * time.Millisecond

type sent struct {
	offset int64
	at     time.Time
}

type seen struct {
	at   time.Time
	high map[int32]int64 // partition → highest stored offset
}

// MeasureFreshness produces c.Rate records per second for c.Duration, each
// stamped with its produce time, while polling ClickHouse every 50ms for
// the highest stored offset of every partition. weft stores a partition's
// records in offset order (one atomic insert per batch, batches one after
// the other), so a record is queryable from the first poll whose high
// offset reaches it: its latency is that poll's end minus its produce time.
func MeasureFreshness(ctx context.Context, srv *Server, c FreshnessConfig) (Freshness, error) {
	res := Freshness{Rate: float64(c.Rate), Poll: freshnessPoll}
	total := int(float64(c.Rate) * c.Duration.Seconds())
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers...))
	if err != nil {
		return res, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	var (
		mu       sync.Mutex
		produced = map[int32][]sent{}
		firstErr error
	)
	done := func(r *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			return
		}
		produced[r.Partition] = append(produced[r.Partition], sent{r.Offset, r.Timestamp})
	}

	// The records are planned before the clock starts (planning costs more
	// CPU than producing, and would compete with weft), then cycled.
	var pool []*kgo.Record
	w := c.Workload
	w.Records, w.Seed, w.Now = min(total, 20_000), w.Seed+7919, time.Now().UTC()
	if err := w.Generate(c.Topic, func(rs []*kgo.Record) error {
		pool = append(pool, rs...)
		return nil
	}); err != nil {
		return res, err
	}

	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	polls := make(chan []seen, 1)
	go func() { polls <- pollHighOffsets(pollCtx, srv, c.Database, c.Topic) }()

	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * time.Second / time.Duration(c.Rate))
		if d := time.Until(due); d > 2*time.Millisecond {
			time.Sleep(d)
		}
		src := pool[i%len(pool)]
		cl.Produce(ctx, &kgo.Record{Topic: src.Topic, Key: src.Key, Value: src.Value, Headers: src.Headers,
			Timestamp: time.Now()}, done)
	}
	res.Events = total
	res.Achieved = float64(total) / time.Since(start).Seconds()
	if err := cl.Flush(ctx); err != nil {
		return res, err
	}
	mu.Lock()
	err = firstErr
	mu.Unlock()
	if err != nil {
		return res, fmt.Errorf("produce: %w", err)
	}

	// Wait until the last produced record of every partition is stored.
	wantHigh := map[int32]int64{}
	for p, ss := range produced {
		wantHigh[p] = ss[len(ss)-1].offset
	}
	deadline := time.Now().Add(60 * time.Second)
	for !storedUpTo(ctx, srv, c.Database, c.Topic, wantHigh) {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("freshness: records still not stored 60s after the last produce")
		}
		time.Sleep(freshnessPoll)
	}
	time.Sleep(2 * freshnessPoll)
	stopPoll()
	lat := latencies(produced, <-polls)
	if len(lat) < res.Events {
		return res, fmt.Errorf("freshness: %d of %d records seen stored", len(lat), res.Events)
	}
	slices.Sort(lat)
	res.P50, res.P99, res.Max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	return res, nil
}

func pollHighOffsets(ctx context.Context, srv *Server, db, topic string) []seen {
	var out []seen
	tick := time.NewTicker(freshnessPoll)
	defer tick.Stop()
	for {
		if high, err := srv.highOffsets(ctx, db, topic); err == nil {
			out = append(out, seen{time.Now(), high})
		}
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
	}
}

func storedUpTo(ctx context.Context, srv *Server, db, topic string, want map[int32]int64) bool {
	high, err := srv.highOffsets(ctx, db, topic)
	if err != nil {
		return false
	}
	for p, o := range want {
		if h, ok := high[p]; !ok || h < o {
			return false
		}
	}
	return true
}

// latencies matches each produced record to the first poll that saw it.
func latencies(produced map[int32][]sent, polls []seen) []time.Duration {
	var out []time.Duration
	for p, ss := range produced {
		slices.SortFunc(ss, func(a, b sent) int { return cmp.Compare(a.offset, b.offset) })
		j := 0
		for _, s := range polls {
			h, ok := s.high[p]
			if !ok {
				continue
			}
			for ; j < len(ss) && ss[j].offset <= h; j++ {
				out = append(out, s.at.Sub(ss[j].at))
			}
		}
	}
	return out
}
