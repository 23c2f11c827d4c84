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
)

// insertConn is the store's insert connection: a native connection of its
// own over which the batch inserts (events, audit leaves) are sent with
// ch-go's typed columns, kept from one batch to the next.
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
// partition of the table, one deduplication token, nothing stored if the
// insert fails before its end. TestInsertBlocks holds ClickHouse to that.
// (Without squashing it would still be exact: each block carries the token
// with its number, and a retry is cut into the same blocks.)
//
// Inserts are serialized by mu: the collector stores one batch at a time,
// and the columns of every table belong to whoever holds it. A failed
// insert closes the connection; the next insert dials again.
type insertConn struct {
	login     login
	blockRows int
	// afterBlock, when set (tests), runs after each block is sent; an
	// error from it aborts the insert there.
	afterBlock func(sent int) error
	// profile, when set (benchmarks), is handed the server's profile
	// events of each insert (its CPU time among them).
	profile func([]ch.ProfileEvent)

	mu     sync.Mutex
	client *ch.Client
}

// defaultBlockRows is the rows per block of an insert: large enough that
// per-block costs (headers, LowCardinality dictionaries, a compression
// frame) stay small, small enough that a block's buffers do.
const defaultBlockRows = 2_000

func newInsertConn(l login) *insertConn { return &insertConn{login: l, blockRows: defaultBlockRows} }

// insert writes rows [0, n) into table in one INSERT of input's columns,
// blockRows rows per block, with settings. fill(i, j) resets the columns
// and appends rows [i, j); it runs under mu, so the columns it fills are
// used by one insert at a time.
func (c *insertConn) insert(ctx context.Context, table string, input proto.Input, n int, fill func(i, j int), settings []ch.Setting) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil || c.client.IsClosed() {
		cl, err := c.dial(ctx)
		if err != nil {
			return err
		}
		c.client = cl
	}
	done, sent := 0, 0
	next := func() {
		end := min(n, done+max(c.blockRows, 1))
		fill(done, end)
		done = end
	}
	next()
	squash := []ch.Setting{
		{Key: "min_insert_block_size_rows", Value: strconv.Itoa(n), Important: true},
		{Key: "min_insert_block_size_bytes", Value: "0", Important: true}, // rows alone decide
	}

	q := ch.Query{Body: "INSERT INTO " + table + " " + input.Columns() + " VALUES", Input: input,
		Settings: append(squash, settings...)}
	q.OnInput = func(context.Context) error {
		sent++
		if c.afterBlock != nil {
			if err := c.afterBlock(sent); err != nil {
				return err
			}
		}
		if done == n {
			input.Reset() // ch-go sends a non-empty input once more
			return io.EOF
		}
		next()
		return nil
	}
	if c.profile != nil {
		q.OnProfileEvents = func(_ context.Context, e []ch.ProfileEvent) error { c.profile(e); return nil }
	}
	err := c.client.Do(ctx, q)
	input.Reset() // keep no row's strings reachable between batches
	if err != nil {
		// The connection's state is unknown after a failed query: start
		// the next insert on a fresh one.
		_ = c.client.Close()
		c.client = nil
		return err
	}
	return nil
}

// dial connects to the first address that answers.
func (c *insertConn) dial(ctx context.Context) (*ch.Client, error) {
	l := c.login
	var errs []error
	for _, addr := range l.addr {
		cl, err := ch.Dial(ctx, ch.Options{
			Address: addr, User: l.user, Password: l.password, TLS: l.tls,
			Compression: compressions[l.compression].insert, ClientName: "weft",
			DialTimeout: l.dial, Dialer: &net.Dialer{Timeout: l.dial},
			// A large insert is answered once its parts are written:
			// allow as long as any query (max_execution_time).
			ReadTimeout: 2 * time.Minute,
			Settings:    l.insertSettings(),
		})
		if err == nil {
			return cl, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return nil, fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errs...))
}

// close closes the connection, if any.
func (c *insertConn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		return nil
	}
	err := c.client.Close()
	c.client = nil
	return err
}
