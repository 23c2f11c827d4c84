package collector

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestEraseOrder: an order's rows erased through the operator-actions log
// verify as erased by that action — every log and checkpoint still holds —
// and keep no payload, key or headers; a salt removed without an erase
// action, and an erased row stored again (a redelivery), are each named.
func TestEraseOrder(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	topic := "orders.erase_" + testenv.Name(t)
	testenv.CreateTopic(t, brokers, topic, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	for i, o := range []string{"ORD-E", "ORD-K", "ORD-E", "ORD-K", "ORD-E"} {
		v := fmt.Sprintf(`{"event_type":"Step%d","order_id":%q,"event_id":"e%d","customer":{"name":"Jane Roe"}}`, i, o, i)
		r := &kgo.Record{Partition: int32(i % 2), Key: []byte(o), Value: []byte(v), Headers: []kgo.RecordHeader{{Key: "x-user", Value: []byte("jane")}}}
		require.NoError(t, cl.ProduceSync(ctx, r).FirstErr())
	}
	audit, verifier := testAudit(t)
	c, stop := auditTap(t, brokers, store, audit, "g_"+testenv.Name(t), regexp.QuoteMeta(topic), 0)
	waitStored(t, c, 5)
	stop()

	// A copy of one of the order's rows as stored, to store again later:
	// in a plain table (`AS events` would copy, on a cluster, the
	// Distributed engine over events_local, which the erasure reaches).
	conn := testenv.Conn(t)
	exec := func(q string, args ...any) { require.NoError(t, conn.Exec(ctx, q, args...), q) }
	exec(`CREATE TABLE ` + store.Table("saved") + ` ENGINE = MergeTree ORDER BY tuple() AS SELECT * FROM ` + store.Table("events") +
		` WHERE order_id = 'ORD-E' AND partition = 0 AND offset = 0`)

	l := NewActionLog(audit, store)
	res, err := l.EraseOrder(ctx, Erase{OrderID: "ORD-E", Reason: "GDPR request 17", Actor: "dpo", Origin: "cli dpo@host"})
	require.NoError(t, err)
	assert.Equal(t, []auditor.Position{{Topic: topic, Partition: 0, Offset: 0}, {Topic: topic, Partition: 0, Offset: 1},
		{Topic: topic, Partition: 0, Offset: 2}}, res.Records)

	verify := func() AuditVerifyReport {
		rep, err := VerifyAudit(ctx, store, AuditVerify{ClusterID: audit.ClusterID, Topic: topic, Verifier: verifier, CheckpointDir: audit.Dir})
		require.NoError(t, err)
		return rep
	}
	rep := verify()
	assert.Empty(t, rep.Findings, "an erasure is not tampering")
	var erased uint64
	for _, lr := range rep.Logs {
		erased += lr.Erased
	}
	assert.Equal(t, uint64(3), erased)
	require.NotNil(t, rep.Actions)
	assert.Equal(t, uint64(1), rep.Actions.Leaves)

	var payloads []string
	require.NoError(t, store.AuditEventRows(ctx, topic, 0, func(e event.Event) error {
		if e.OrderID == "ORD-E" {
			assert.Empty(t, e.Key)
			assert.Empty(t, e.Headers)
		}
		payloads = append(payloads, e.OrderID+":"+string(e.Payload))
		return nil
	}))
	for _, p := range payloads {
		assert.NotContains(t, p, "ORD-E:{", "an erased row keeps no payload")
	}
	require.NoError(t, store.AuditEventRows(ctx, topic, 1, func(e event.Event) error {
		assert.Contains(t, string(e.Payload), "Jane Roe", "another order's rows are untouched")
		return nil
	}))

	// A salt removed by hand is not an erasure.
	testenv.Mutate(t, `ALTER TABLE `+store.Table("audit_leaves")+` UPDATE salt = '' WHERE order_id = 'ORD-K' AND partition = 1 AND offset = 1`)
	// The erased record stored again, as a redelivery would.
	exec(`INSERT INTO ` + store.Table("events") + ` SELECT * FROM ` + store.Table("saved"))
	var kinds []string
	for _, f := range verify().Findings {
		kinds = append(kinds, fmt.Sprintf("%s %d@%d %s", f.Kind, f.Partition, f.Offset, f.OrderID))
	}
	assert.ElementsMatch(t, []string{"erased-row-restored 0@0 ORD-E", "erased-without-action 1@1 ORD-K"}, kinds)

	var verbs []string
	require.NoError(t, store.ActionRows(ctx, "ORD-E", func(r chstore.ActionRow) error {
		verbs = append(verbs, fmt.Sprintf("%s %s %s %d", r.Verb, r.Actor, r.Detail, len(r.Targets)))
		return nil
	}))
	assert.Equal(t, []string{"erase dpo GDPR request 17 3"}, verbs)
}
