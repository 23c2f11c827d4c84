package collector

import (
	"bytes"
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
	"github.com/weft-sh/weft/internal/testenv"
)

// TestExportOrder: a tap with the audit trail on stores an order's events
// on two topics and three partitions (beside another order's), an ack is
// logged on the order; each case copies what was stored into a fresh
// database, changes it, and exports the order. An untouched export, written
// and read back, verifies offline with the verifier key and lists the
// order's events and actions, nothing of the other order; a changed row or
// a salt gone without an erasure is refused, naming the record; leaves no
// checkpoint covers yet are refused, counted.
func TestExportOrder(t *testing.T) {
	brokers := testenv.Kafka(t)
	seed := testenv.Store(t)
	name := testenv.Name(t)
	orders, payments := "orders.export_"+name, "payments.export_"+name
	testenv.CreateTopic(t, brokers, orders, 2, nil)
	testenv.CreateTopic(t, brokers, payments, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	produce := func(topic string, part int32, order, typ string) {
		v := fmt.Sprintf(`{"event_type":%q,"order_id":%q,"event_id":"%s-%s","amount":12.5}`, typ, order, order, typ)
		r := &kgo.Record{Topic: topic, Partition: part, Key: []byte(order), Value: []byte(v),
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t-" + typ)}}}
		require.NoError(t, cl.ProduceSync(ctx, r).FirstErr())
	}
	produce(orders, 0, "ord-E", "OrderPlaced")           // orders/0@0
	produce(orders, 0, "ord-other", "OrderPlaced")       // orders/0@1
	produce(payments, 0, "ord-E", "PaymentAuthorized")   // payments/0@0
	produce(orders, 1, "ord-other", "OrderConfirmed")    // orders/1@0
	produce(orders, 1, "ord-E", "OrderConfirmed")        // orders/1@1
	produce(payments, 0, "ord-other", "PaymentDeclined") // payments/0@1

	audit, verifier := testAudit(t)
	c, stop := auditTap(t, brokers, seed, audit, "g_"+name, regexp.QuoteMeta(orders)+"|"+regexp.QuoteMeta(payments), 0)
	waitStored(t, c, 6)
	stop() // checkpoints every log that grew
	actions := NewActionLog(audit, seed)
	_, err = actions.Record(ctx, auditor.Action{Actor: "alice", Origin: "cli alice@ops", Verb: "ack", Resource: "finding/F-1",
		Outcome: auditor.OutcomeSuccess, Detail: "seen"}, "ord-E")
	require.NoError(t, err)
	_, err = actions.Record(ctx, auditor.Action{Actor: "bob", Origin: "cli bob@ops", Verb: "ack", Resource: "finding/F-2",
		Outcome: auditor.OutcomeSuccess}, "ord-other")
	require.NoError(t, err)

	conn := testenv.Conn(t)
	exec := func(t *testing.T, q string, args ...any) { require.NoError(t, conn.Exec(ctx, q, args...), q) }
	created := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	export := func(s *chstore.Store, order string) (auditor.Bundle, error) {
		return ExportOrder(ctx, s, ExportOptions{ClusterID: audit.ClusterID, OrderID: order, Verifier: verifier,
			CreatedAt: created, WeftVersion: "v-test", MaskPolicy: "test policy"})
	}
	// roundTrip writes b, reads it back and verifies it offline.
	roundTrip := func(t *testing.T, b auditor.Bundle) auditor.Report {
		var buf bytes.Buffer
		require.NoError(t, auditor.WriteBundle(&buf, b))
		read, err := auditor.ReadBundle(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		require.NoError(t, err)
		rep, err := auditor.VerifyBundle(read, verifier.Key())
		require.NoError(t, err)
		require.True(t, rep.Authenticated)
		return rep
	}
	positions := func(rep auditor.Report) []string {
		var out []string
		for _, e := range rep.Events {
			out = append(out, fmt.Sprintf("%s %s", e.Position, e.Status))
		}
		return out
	}
	verified := []string{orders + "/0@0 verified", orders + "/1@1 verified", payments + "/0@0 verified"}

	t.Run("verifies offline", func(t *testing.T) {
		b, err := export(seed, "ord-E")
		require.NoError(t, err)
		rep := roundTrip(t, b)
		assert.Equal(t, verified, positions(rep))
		assert.Equal(t, "ord-E", rep.OrderID)
		for _, e := range rep.Events {
			assert.Equal(t, "ord-E", e.Row.Columns["order_id"])
			assert.Contains(t, e.Row.Value, `"order_id":"ord-E"`)
			assert.True(t, e.SourceCommitted)
		}
		assert.Equal(t, "OrderConfirmed", rep.Events[1].Row.Columns["event_type"])
		require.Len(t, rep.Actions, 1, "the ack on ord-E, not the one on ord-other")
		assert.Equal(t, []string{"alice", "ack", "finding/F-1", "success"},
			[]string{rep.Actions[0].Actor, rep.Actions[0].Verb, rep.Actions[0].Resource, rep.Actions[0].Outcome})
		assert.Len(t, rep.Checkpoints, 4, "three partitions' logs and the actions log")
		assert.Equal(t, auditor.Claims{CreatedAt: created, Query: "order_id=ord-E", WeftVersion: "v-test", MaskPolicy: "test policy"}, rep.Claims)
	})

	cases := []struct {
		name   string
		tamper func(t *testing.T, s *chstore.Store)
		// check the export; nil: it must fail with each of wantErr.
		check   func(t *testing.T, s *chstore.Store, b auditor.Bundle)
		wantErr []string
		is      error
	}{
		{name: "identical copy of a row (a redelivery not merged yet)", tamper: func(t *testing.T, s *chstore.Store) {
			exec(t, `INSERT INTO `+s.Table("events")+` SELECT * FROM `+seed.Table("events")+` WHERE topic = ? AND partition = 0 AND offset = 0`, orders)
		}, check: func(t *testing.T, _ *chstore.Store, b auditor.Bundle) {
			assert.Equal(t, verified, positions(roundTrip(t, b)))
		}},
		{name: "changed row", tamper: func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("events")+` UPDATE payload = replaceOne(payload, '12.5', '1250') WHERE topic = ? AND partition = 1 AND offset = 1`, orders)
		}, wantErr: []string{`order "ord-E": the stored evidence does not verify: 1 of its 3 records`, orders + "/1@1 (leaf 1): the stored row does not recompute to its leaf's C_stored", "run `weft audit verify`"},
			is: auditor.ErrTampered},
		{name: "different second copy", tamper: func(t *testing.T, s *chstore.Store) {
			exec(t, `INSERT INTO `+s.Table("events")+` SELECT * REPLACE ('forged' AS payload) FROM `+seed.Table("events")+` WHERE topic = ? AND offset = 0`, payments)
		}, wantErr: []string{payments + "/0@0 (leaf 0): a second, different row"}, is: auditor.ErrTampered},
		{name: "deleted row", tamper: func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("events")+` DELETE WHERE topic = ? AND offset = 0`, payments)
		}, wantErr: []string{payments + "/0@0 (leaf 0): no events row"}, is: auditor.ErrTampered},
		{name: "salt removed without an erasure", tamper: func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_leaves")+` UPDATE salt = '' WHERE topic = ? AND partition = 0 AND offset = 0`, orders)
		}, wantErr: []string{orders + "/0@0 (leaf 0): the salt is gone (erased?) and no successful erase action names the record"}, is: auditor.ErrTampered},
		{name: "erased, by an action not on the order", tamper: func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_leaves")+` UPDATE salt = '' WHERE topic = ? AND partition = 0 AND offset = 0`, orders)
			testenv.Mutate(t, `ALTER TABLE `+s.Table("events")+` UPDATE payload = '' WHERE topic = ? AND partition = 0 AND offset = 0`, orders)
			a := audit
			a.Dir = t.TempDir()
			_, err := NewActionLog(a, s).Record(ctx, auditor.Action{Actor: "carol", Origin: "cli carol@ops", Verb: "erase",
				Resource: "records", Outcome: auditor.OutcomeSuccess, Detail: "GDPR request 7",
				Targets: []auditor.Position{{Topic: orders, Partition: 0, Offset: 0}}}, "")
			require.NoError(t, err)
		}, check: func(t *testing.T, _ *chstore.Store, b auditor.Bundle) {
			rep := roundTrip(t, b)
			assert.Equal(t, []string{orders + "/0@0 erased", orders + "/1@1 verified", payments + "/0@0 verified"}, positions(rep))
			require.Len(t, rep.Actions, 2, "the ack and the erasure")
			require.NotNil(t, rep.Events[0].Erasure)
			assert.Equal(t, "erase", rep.Actions[rep.Events[0].Erasure.Action].Verb)
			assert.Equal(t, "GDPR request 7", rep.Events[0].Erasure.Reason)
		}},
		{name: "the order erased", tamper: func(t *testing.T, s *chstore.Store) {
			a := audit
			a.Dir = t.TempDir()
			_, err := NewActionLog(a, s).EraseOrder(ctx, Erase{OrderID: "ord-E", Reason: "GDPR request 9", Actor: "dave", Origin: "cli dave@ops"})
			require.NoError(t, err)
		}, check: func(t *testing.T, _ *chstore.Store, b auditor.Bundle) {
			rep := roundTrip(t, b)
			assert.Equal(t, []string{orders + "/0@0 erased", orders + "/1@1 erased", payments + "/0@0 erased"}, positions(rep))
			require.Len(t, rep.Actions, 2, "the ack and the erasure")
			for _, e := range rep.Events {
				require.NotNil(t, e.Erasure)
				assert.Equal(t, 1, e.Erasure.Action)
				assert.Equal(t, "dave", e.Erasure.Actor)
			}
			for _, e := range b.Events {
				assert.Nil(t, e.Row, "no row of an erased record in the bundle")
				assert.Nil(t, e.Salt)
			}
		}},
		{name: "a log not checkpointed", tamper: func(t *testing.T, s *chstore.Store) {
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_checkpoints")+` DELETE WHERE origin = ?`, auditor.LogOrigin(audit.ClusterID, payments, 0))
		}, wantErr: []string{`order "ord-E": 1 of its 3 records are not covered by a checkpoint yet`,
			payments + "/0, whose newest checkpoint covers 0 leaves", "audit.checkpoint.every", "retry"}, is: ErrNotCheckpointed},
		{name: "another order's leaf rewritten", tamper: func(t *testing.T, s *chstore.Store) {
			// ord-other's leaf hash in a log of ord-E: the root tells.
			testenv.Mutate(t, `ALTER TABLE `+s.Table("audit_leaves")+` UPDATE leaf_hash = toFixedString(unhex(repeat('00', 32)), 32) WHERE topic = ? AND partition = 0 AND offset = 1`, orders)
		}, wantErr: []string{auditor.LogOrigin(audit.ClusterID, orders, 0) + " does not verify: its stored leaves do not rebuild the root of its checkpoint at size 2"},
			is: auditor.ErrTampered},
		{name: "a newer checkpoint signed by another key", tamper: func(t *testing.T, s *chstore.Store) {
			// A checkpoint signed by another key: the configured one does not verify it.
			other, _, err := auditor.GenerateKey("mallory")
			require.NoError(t, err)
			signer, err := auditor.NewSigner(other)
			require.NoError(t, err)
			sc, err := signer.Sign(auditor.Checkpoint{Origin: auditor.LogOrigin(audit.ClusterID, orders, 1), Size: 9})
			require.NoError(t, err)
			require.NoError(t, s.InsertCheckpoint(ctx, chstore.CheckpointRow{Origin: sc.Origin, Size: sc.Size, Note: sc.Note, Signed: true, CreatedAt: time.Now()}))
		}, wantErr: []string{"the newest checkpoint of " + auditor.LogOrigin(audit.ClusterID, orders, 1) + " (size 9): ", "not signed by weft-test"},
			is: auditor.ErrUnverifiable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := testenv.Store(t)
			for _, table := range []string{"events", "quarantine", "audit_leaves", "audit_checkpoints", "audit_actions"} {
				exec(t, `INSERT INTO `+s.Table(table)+` SELECT * FROM `+seed.Table(table))
			}
			tc.tamper(t, s)
			b, err := export(s, "ord-E")
			if tc.check != nil {
				require.NoError(t, err)
				tc.check(t, s, b)
				return
			}
			require.Error(t, err)
			t.Log(err)
			assert.ErrorIs(t, err, tc.is)
			for _, w := range tc.wantErr {
				assert.Contains(t, err.Error(), w)
			}
		})
	}

	t.Run("unknown order", func(t *testing.T) {
		_, err := export(seed, "ord-nobody")
		assert.ErrorContains(t, err, `order "ord-nobody": no audited records and no operator actions`)
	})
}
