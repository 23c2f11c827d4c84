package chstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/ch-go"
	"github.com/ClickHouse/ch-go/proto"

	"github.com/weft-sh/weft/internal/event"
)

// eventWriter inserts events over a native connection of its own, with
// ch-go's typed columns kept from one batch to the next.
//
// It exists for memory and CPU, not features: clickhouse-go builds fresh
// column buffers for every batch and grows them by appending, so a batch
// allocated several times its size, and each connection of its pool that
// ever carried an insert kept encode and compression buffers of a whole
// batch. Here the columns are reset, not reallocated (after the first
// batches an insert allocates almost nothing), and one connection carries
// every insert, so one set of buffers exists.
//
// A batch is sent as blocks of blockRows rows, so the columns and ch-go's
// encode and compression buffers hold one block, not the whole batch
// (docs/benchmarks.md, session 4, has the figures). The insert asks the
// server to squash its blocks into one before writing
// (min_insert_block_size_rows = the batch's rows, whatever the server's
// profile says), so the batch is still written as it was: one part per
// month of record time, one deduplication token, nothing stored if the
// insert fails before its end. TestInsertBlocks holds ClickHouse to that.
// (Without squashing it would still be exact: each block carries the token
// with its number, and a retry is cut into the same blocks.)
//
// Inserts are serialized by mu: the collector stores one batch at a time.
// A failed insert closes the connection; the next insert dials again.
type eventWriter struct {
	login     login
	blockRows int
	// afterBlock, when set (tests), runs after each block is sent; an
	// error from it aborts the insert there.
	afterBlock func(sent int) error

	mu     sync.Mutex
	client *ch.Client
	cols   eventCols
	input  proto.Input
}

// eventCols are the columns of the events table (migrations/001_events.sql).
type eventCols struct {
	topic, eventType, service, format            *proto.ColLowCardinality[string]
	partition                                    proto.ColInt32
	offset                                       proto.ColInt64
	recordKey, eventID, orderID, causationID     proto.ColStr
	correlationID, traceID, spanID, parentSpanID proto.ColStr
	traceState, idempotencyKey, payload          proto.ColStr
	recordTime, eventTime, ingestedAt            *proto.ColDateTime64
	versionVector                                *proto.ColMap[string, uint64]
	headers                                      *proto.ColMap[string, string]
	payloadHash                                  proto.ColFixedStr
}

// defaultBlockRows is the rows per block of an insert: large enough that
// per-block costs (headers, LowCardinality dictionaries, a compression
// frame) stay small, small enough that a block's buffers do.
const defaultBlockRows = 2_000

func newEventWriter(l login) *eventWriter {
	w := &eventWriter{login: l, blockRows: defaultBlockRows}
	k := &w.cols
	k.topic, k.eventType = new(proto.ColStr).LowCardinality(), new(proto.ColStr).LowCardinality()
	k.service, k.format = new(proto.ColStr).LowCardinality(), new(proto.ColStr).LowCardinality()
	ms := func() *proto.ColDateTime64 {
		return new(proto.ColDateTime64).WithPrecision(proto.PrecisionMilli).WithLocation(time.UTC)
	}
	k.recordTime, k.eventTime, k.ingestedAt = ms(), ms(), ms()
	k.versionVector = proto.NewMap[string, uint64](new(proto.ColStr).LowCardinality(), new(proto.ColUInt64))
	k.headers = proto.NewMap[string, string](new(proto.ColStr), new(proto.ColStr))
	k.payloadHash.SetSize(64)
	w.input = proto.Input{
		{Name: "topic", Data: k.topic},
		{Name: "partition", Data: &k.partition},
		{Name: "offset", Data: &k.offset},
		{Name: "record_key", Data: &k.recordKey},
		{Name: "record_time", Data: k.recordTime},
		{Name: "event_id", Data: &k.eventID},
		{Name: "event_type", Data: k.eventType},
		{Name: "service", Data: k.service},
		{Name: "order_id", Data: &k.orderID},
		{Name: "event_time", Data: k.eventTime},
		{Name: "causation_id", Data: &k.causationID},
		{Name: "correlation_id", Data: &k.correlationID},
		{Name: "trace_id", Data: &k.traceID},
		{Name: "span_id", Data: &k.spanID},
		{Name: "parent_span_id", Data: &k.parentSpanID},
		{Name: "trace_state", Data: &k.traceState},
		{Name: "version_vector", Data: k.versionVector},
		{Name: "idempotency_key", Data: &k.idempotencyKey},
		{Name: "format", Data: k.format},
		{Name: "headers", Data: k.headers},
		{Name: "payload", Data: &k.payload},
		{Name: "payload_hash", Data: &k.payloadHash},
		{Name: "ingested_at", Data: k.ingestedAt},
	}
	return w
}

// fill resets the columns and appends evs.
func (w *eventWriter) fill(evs []event.Event, ingestedAt time.Time) {
	w.input.Reset()
	k := &w.cols
	var hash [64]byte
	for i := range evs {
		e := &evs[i]
		k.topic.Append(e.Topic)
		k.partition.Append(e.Partition)
		k.offset.Append(e.Offset)
		k.recordKey.Append(e.Key)
		k.recordTime.Append(e.RecordTime)
		k.eventID.Append(e.EventID)
		k.eventType.Append(e.Type)
		k.service.Append(e.Service)
		k.orderID.Append(e.OrderID)
		k.eventTime.Append(e.EventTime)
		k.causationID.Append(e.CausationID)
		k.correlationID.Append(e.CorrelationID)
		k.traceID.Append(e.TraceID)
		k.spanID.Append(e.SpanID)
		k.parentSpanID.Append(e.ParentSpanID)
		k.traceState.Append(e.TraceState)
		k.versionVector.Append(e.VersionVector)
		k.idempotencyKey.Append(e.IdempotencyKey)
		k.format.Append(string(e.Format))
		k.headers.Append(e.Headers)
		k.payload.AppendBytes(e.Payload)
		// FixedString(64): shorter values are zero-padded, as ClickHouse does.
		n := copy(hash[:], e.PayloadHash)
		clear(hash[n:])
		k.payloadHash.Append(hash[:])
		k.ingestedAt.Append(ingestedAt)
	}
}

// insert writes evs into table in one INSERT, blockRows rows per block,
// with settings.
func (w *eventWriter) insert(ctx context.Context, table string, evs []event.Event, ingestedAt time.Time, settings []ch.Setting) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.client == nil || w.client.IsClosed() {
		c, err := w.dial(ctx)
		if err != nil {
			return err
		}
		w.client = c
	}
	rest, sent := evs, 0
	next := func() {
		n := min(len(rest), max(w.blockRows, 1))
		w.fill(rest[:n], ingestedAt)
		rest = rest[n:]
	}
	next()
	squash := []ch.Setting{
		{Key: "min_insert_block_size_rows", Value: strconv.Itoa(len(evs)), Important: true},
		{Key: "min_insert_block_size_bytes", Value: "0", Important: true}, // rows alone decide
	}

	q := ch.Query{Body: "INSERT INTO " + table + " " + w.input.Columns() + " VALUES", Input: w.input,
		Settings: append(squash, settings...)}
	q.OnInput = func(context.Context) error {
		sent++
		if w.afterBlock != nil {
			if err := w.afterBlock(sent); err != nil {
				return err
			}
		}
		if len(rest) == 0 {
			w.input.Reset() // ch-go sends a non-empty input once more
			return io.EOF
		}
		next()
		return nil
	}
	err := w.client.Do(ctx, q)
	w.input.Reset() // keep no event's strings reachable between batches
	if err != nil {
		// The connection's state is unknown after a failed query: start
		// the next insert on a fresh one.
		_ = w.client.Close()
		w.client = nil
		return err
	}
	return nil
}

// dial connects to the first address that answers.
func (w *eventWriter) dial(ctx context.Context) (*ch.Client, error) {
	l := w.login
	var errs []error
	for _, addr := range l.addr {
		c, err := ch.Dial(ctx, ch.Options{
			Address: addr, User: l.user, Password: l.password, TLS: l.tls,
			Compression: compressions[l.compression].insert, ClientName: "weft",
			DialTimeout: l.dial, Dialer: &net.Dialer{Timeout: l.dial},
			// A large insert is answered once its parts are written:
			// allow as long as any query (max_execution_time).
			ReadTimeout: 2 * time.Minute,
		})
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return nil, fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errs...))
}

// close closes the connection, if any.
func (w *eventWriter) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.client == nil {
		return nil
	}
	err := w.client.Close()
	w.client = nil
	return err
}
