package benchkit

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/event"
)

// DecodePool decodes the first size records of the workload with weft's
// decoder (default config), for BareInsert to write: the rows weft would
// write. It also returns the records' mean value size.
func DecodePool(w Workload, size int) (pool []event.Event, meanValue int, err error) {
	d, err := collector.NewDecoder(collector.Default())
	if err != nil {
		return nil, 0, err
	}
	small := w
	small.Records = min(size, w.Records)
	var bytes int
	err = small.Generate(w.Topic(), func(recs []*kgo.Record) error {
		for _, r := range recs {
			e, err := d.Decode(r)
			if err != nil {
				return fmt.Errorf("decode workload record: %w", err)
			}
			pool = append(pool, e)
			bytes += len(r.Value)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return pool, bytes / max(len(pool), 1), nil
}

// BareInsert writes n rows into db's events table (weft's schema) with
// plain clickhouse-go batches of batchSize rows, one batch after the other,
// as weft does: the rows are pool's events, cycled, with fresh (partition,
// offset) coordinates over partitions so none collapses. Building the pool
// (decoding) is not timed; appending to a batch (the client's column
// encoding) and sending it are. When Send returns, the rows are queryable.
func BareInsert(ctx context.Context, srv *Server, db string, pool []event.Event, n, batchSize int, partitions int32) (Run, error) {
	if len(pool) == 0 {
		return Run{}, fmt.Errorf("bare insert: empty pool")
	}
	run := Run{Events: n}
	start := time.Now()
	for done := 0; done < n; {
		b, err := srv.prepareEvents(ctx, db)
		if err != nil {
			return run, fmt.Errorf("bare insert: prepare: %w", err)
		}
		now := time.Now().UTC()
		size := min(batchSize, n-done)
		for i := done; i < done+size; i++ {
			e := &pool[i%len(pool)]
			vv, h := e.VersionVector, e.Headers
			if vv == nil {
				vv = map[string]uint64{}
			}
			if h == nil {
				h = map[string]string{}
			}
			if err := b.Append(e.Topic, int32(i)%partitions, int64(i)/int64(partitions), e.Key, e.RecordTime,
				e.EventID, e.Type, e.Service, e.OrderID, e.EventTime, e.CausationID, e.CorrelationID,
				e.TraceID, e.SpanID, e.ParentSpanID, e.TraceState, vv, e.IdempotencyKey, string(e.Format),
				h, string(e.Payload), e.PayloadHash, now); err != nil {
				_ = b.Abort()
				return run, fmt.Errorf("bare insert: append: %w", err)
			}
		}
		if err := b.Send(); err != nil {
			return run, fmt.Errorf("bare insert: send: %w", err)
		}
		if done == 0 {
			run.FirstRow = time.Since(start)
		}
		done += size
	}
	run.Elapsed = time.Since(start)
	return run, nil
}
