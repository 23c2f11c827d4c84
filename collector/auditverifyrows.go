package collector

import (
	"cmp"
	"context"
	"strings"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
)

// verifyRows is every events and quarantine row `weft audit verify`
// checks, read once for all the logs: both tables in (topic, partition,
// offset) order (chstore.AuditEventStream, AuditQuarantineStream), merged.
// The logs are verified in that order too, and each takes its partition's
// rows from here (partition). One read of each table rather than one per
// partition: the events table is ordered by order id, so reading one
// partition's rows scans the whole table (docs/benchmarks.md has the
// figures).
//
// A goroutine reads, rebuilds and encodes the rows while the caller
// checks them, handing them over in batches through a short channel: the
// memory held is a few batches whatever the table size.
type verifyRows struct {
	batches <-chan []streamRow
	cancel  context.CancelFunc
	// readErr is the reads' error, set before batches is closed; err is
	// the caller's copy, set once it saw batches closed.
	readErr error
	err     error

	batch []streamRow
	row   streamRow
	ok    bool
}

// streamRow is a stored row and the partition it belongs to.
type streamRow struct {
	topic     string
	partition int32
	storedRow
}

// Rows per batch and batches in flight between the reader and the caller.
const (
	verifyBatchRows = 256
	verifyBatches   = 4
)

// newVerifyRows starts reading the rows of topic (every topic's when
// empty). stop ends the reads.
func newVerifyRows(ctx context.Context, store *chstore.Store, topic string) *verifyRows {
	ctx, cancel := context.WithCancel(ctx)
	batches := make(chan []streamRow, verifyBatches)
	s := &verifyRows{batches: batches, cancel: cancel}
	go func() {
		defer close(batches)
		s.readErr = readStoredRows(ctx, store, topic, func(b []streamRow) bool {
			select {
			case batches <- b:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	s.advance()
	return s
}

// readStoredRows merges the two tables' rows, each rebuilt and encoded as
// the stored row its leaf commits to, and hands them to send in batches
// until send returns false.
func readStoredRows(ctx context.Context, store *chstore.Store, topic string, send func([]streamRow) bool) error {
	evNext, evStop, evErr := pull(func(fn func(event.Event) error) error {
		return store.AuditEventStream(ctx, topic, fn)
	})
	defer evStop()
	qNext, qStop, qErr := pull(func(fn func(event.Quarantined) error) error {
		return store.AuditQuarantineStream(ctx, topic, fn)
	})
	defer qStop()
	ev, evOK := evNext()
	q, qOK := qNext()
	batch := make([]streamRow, 0, verifyBatchRows)
	for evOK || qOK {
		var r streamRow
		var rec auditor.StoredRecord
		if evOK && (!qOK || comparePosition(ev.Topic, ev.Partition, ev.Offset, q.Topic, q.Partition, q.Offset) <= 0) {
			rec = StoredEvent(&ev)
			r = streamRow{ev.Topic, ev.Partition, storedRow{offset: ev.Offset, table: "events", orderID: ev.OrderID}}
			ev, evOK = evNext()
		} else {
			rec = StoredQuarantined(&q)
			r = streamRow{q.Topic, q.Partition, storedRow{offset: q.Offset, table: "quarantine"}}
			q, qOK = qNext()
		}
		r.row = encodeStored(rec)
		if batch = append(batch, r); len(batch) == verifyBatchRows {
			if !send(batch) {
				return ctx.Err()
			}
			batch = make([]streamRow, 0, verifyBatchRows)
		}
	}
	if err := firstErr(*evErr, *qErr); err != nil {
		return err
	}
	if len(batch) > 0 && !send(batch) {
		return ctx.Err()
	}
	return nil
}

// advance moves to the next row; at the end it takes the reads' error.
func (s *verifyRows) advance() {
	for len(s.batch) == 0 {
		b, ok := <-s.batches
		if !ok {
			s.row, s.ok, s.err = streamRow{}, false, s.readErr
			return
		}
		s.batch = b
	}
	s.row, s.ok, s.batch = s.batch[0], true, s.batch[1:]
}

// stop ends the reads and waits for the reader to return.
func (s *verifyRows) stop() {
	s.cancel()
	for range s.batches {
	}
}

// partition returns the rows of one topic-partition, in offset order. The
// rows of the partitions before it that no log took (a partition without
// leaves, or the rest of a log left early) are skipped.
func (s *verifyRows) partition(topic string, partition int32) func() (storedRow, bool) {
	for s.ok && comparePosition(s.row.topic, s.row.partition, 0, topic, partition, 0) < 0 {
		s.advance()
	}
	return func() (storedRow, bool) {
		if !s.ok || s.row.topic != topic || s.row.partition != partition {
			return storedRow{}, false
		}
		r := s.row.storedRow
		s.advance()
		return r, true
	}
}

// comparePosition orders records as the reads do: by topic (bytes), partition, offset.
func comparePosition(topicA string, partA int32, offA int64, topicB string, partB int32, offB int64) int {
	return cmp.Or(strings.Compare(topicA, topicB), cmp.Compare(partA, partB), cmp.Compare(offA, offB))
}

// encodeStored is rec's canonical bytes in one allocation, or nil for a
// row the encoding refuses (a field over its limit): it cannot match any
// leaf, and is checked as an empty row.
func encodeStored(rec auditor.StoredRecord) []byte {
	n := 64 + len(rec.Key) + len(rec.Value)
	for _, h := range rec.Headers {
		n += 8 + len(h.Name) + len(h.Value)
	}
	for k, v := range rec.Columns {
		n += 8 + len(k) + len(v)
	}
	b, err := rec.AppendBinary(make([]byte, 0, n))
	if err != nil {
		return nil
	}
	return b
}
