// Package scalegen fills weft's events table with a large, realistic
// commerce history for the scale benchmark (`make bench-scale`,
// docs/scale.md): N orders following the built-in BOPIS and async-payment
// workflows, generated entirely inside ClickHouse with
// INSERT INTO events … SELECT … FROM numbers(…), so the order_state view is
// fed exactly as the collector feeds it.
//
// Every order is a pure function of its index and the workload's seed:
// its path (completed, pickup expired, payment declined, payment failed;
// synchronous or asynchronous payment with retries), its event times, ids,
// causation ids, trace context, version vectors, idempotency keys and
// payloads. A few per cent are cut short (stuck past their step's SLA, or
// still in flight at the watermark), a few per thousand carry a fault (a
// missing event, a redelivered duplicate, records produced out of order).
// The same SQL answers what was generated (Manifest, Sample), so the
// benchmark can check the engine's answers exactly.
//
// Loads are resumable: chunks are recorded as they complete, and a database
// that already holds the whole workload is reused as is.
//
// scalegen is a test-data tool, not a part of weft: it works on a DB of its
// own (store.go), a connection from chstore.Dial, and only weft's schema
// comes from weft's store (chstore.Store.Migrate). Every statement it runs
// is in store.go, or rendered from the templates by sql.go and run from
// store.go. Names (event types, services, topics, products, the offsets
// already stored) are bound as {name:Type} parameters, never quoted into
// the SQL; the templates' numbers are the generator's constants, rendered as
// literals because their types are part of what it generates; the
// database's name, which cannot be bound, is checked by
// chstore.CheckIdentifier when the DB is opened.
package scalegen
