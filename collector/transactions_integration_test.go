package collector

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/testenv"
)

// TestTransactionsReadCommitted: records of an aborted transaction are never
// stored; committed ones are, and the offset gaps left by the transaction
// markers are normal.
func TestTransactionsReadCommitted(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	topic := "payments.tx_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID("tx-"+testenv.Name(t)), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	produceTx := func(ids []string, commit kgo.TransactionEndTry) {
		require.NoError(t, cl.BeginTransaction())
		for _, id := range ids {
			r := &kgo.Record{Key: []byte("o-" + id), Value: []byte(`{"event_type":"PaymentRequested","order_id":"o-` + id + `","event_id":"` + id + `"}`)}
			require.NoError(t, cl.ProduceSync(ctx, r).FirstErr())
		}
		require.NoError(t, cl.EndTransaction(ctx, commit))
	}
	produceTx([]string{"a1", "a2", "a3"}, kgo.TryAbort)
	produceTx([]string{"c1", "c2"}, kgo.TryCommit)
	produceTx([]string{"a4"}, kgo.TryAbort)
	produceTx([]string{"c3"}, kgo.TryCommit)

	tp := startTap(t, brokers, store, regexp.QuoteMeta(topic))
	tp.waitConsumed(t, 3)
	// Give the tap time to read past everything: nothing more may arrive.
	time.Sleep(time.Second)
	assert.Equal(t, Stats{Consumed: 3, Stored: 3}, tp.c.Stats())

	rows, err := testenv.Conn(t).Query(ctx, "SELECT event_id, offset FROM "+store.Table("events")+" FINAL ORDER BY offset")
	require.NoError(t, err)
	var ids []string
	var offsets []int64
	for rows.Next() {
		var id string
		var off int64
		require.NoError(t, rows.Scan(&id, &off))
		ids, offsets = append(ids, id), append(offsets, off)
	}
	assert.Equal(t, []string{"c1", "c2", "c3"}, ids)
	// a1–a3 and their abort marker come first; c3 follows c2's commit
	// marker, a4 and its abort marker.
	assert.Equal(t, []int64{4, 5, 9}, offsets)
}
