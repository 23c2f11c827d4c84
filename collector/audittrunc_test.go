package collector

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/kafkaconn"
)

// TestAuditStagesDataLoss: a *kgo.ErrDataLoss in a poll becomes a
// truncation leaf, staged with the batch's leaves between the records
// polled before it and those after, which are logged again from the offset
// Kafka resumed at. The partitions' logs are held already, so no store is
// read.
func TestAuditStagesDataLoss(t *testing.T) {
	const topic = "orders"
	record := func(off int64, epoch int32) *kgo.Record {
		return &kgo.Record{Topic: topic, Offset: off, LeaderEpoch: epoch, Timestamp: time.UnixMilli(1_700_000_000_000 + off),
			Value: []byte(fmt.Sprintf(`{"event_type":"OrderPlaced","order_id":"o-1","event_id":"e%d-%d"}`, epoch, off))}
	}
	loss := func(consumedTo, resetTo int64) kgo.Fetches {
		return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: topic, Partitions: []kgo.FetchPartition{{Partition: 0,
			Err: &kgo.ErrDataLoss{Topic: topic, ConsumedTo: consumedTo, ConsumedToEpoch: 1, ResetTo: resetTo, ResetToEpoch: 2}}}}}}}
	}
	cases := []struct {
		name   string
		logged int64 // records 0..logged-1 are in the log before the batch
		poll   func(c *Collector, b *batch)
		want   []string
	}{
		{"records logged again after the truncation", 10, func(c *Collector, b *batch) {
			for off := int64(10); off < 15; off++ {
				c.add(b, record(off, 1))
			}
			c.audit.noteFetches(b, loss(15, 12), time.UnixMilli(5))
			for off := int64(12); off < 14; off++ {
				c.add(b, record(off, 2))
			}
		}, []string{"record 10", "record 11", "record 12", "record 13", "record 14", "truncation 12", "record 12", "record 13"}},
		{"the loss alone in a batch", 10, func(c *Collector, b *batch) {
			c.audit.noteFetches(b, loss(10, 7), time.UnixMilli(5))
		}, []string{"truncation 7"}},
		{"the tap had read past its last record (an aborted transaction)", 10, func(c *Collector, b *batch) {
			c.audit.noteFetches(b, loss(13, 11), time.UnixMilli(5))
			c.add(b, record(11, 2))
		}, []string{"gap 10-13", "truncation 11", "record 11"}},
		{"a loss where the tap was: nothing read again", 10, func(c *Collector, b *batch) {
			c.audit.noteFetches(b, loss(10, 10), time.UnixMilli(5))
			c.add(b, record(10, 2))
		}, []string{"truncation 10", "record 10"}},
		{"a log with no leaf marks nothing", 0, func(c *Collector, b *batch) {
			c.audit.noteFetches(b, loss(5, 0), time.UnixMilli(5))
			c.add(b, record(0, 2))
		}, []string{"record 0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			audit, _ := testAudit(t)
			c, err := New(Default(), kafkaconn.Default(), nil, Settings{Logger: zerolog.Nop(), Audit: &audit})
			require.NoError(t, err)
			p, err := auditor.NewPartitionLog(topic, 0)
			require.NoError(t, err)
			for off := int64(0); off < tc.logged; off++ {
				_, err := p.AppendRecord(auditor.Leaf{Kind: auditor.KindRecord, Topic: topic, Offset: off})
				require.NoError(t, err)
			}
			c.audit.logs[topicPartition{topic, 0}] = &auditLog{p: p}
			b := newBatch()
			tc.poll(c, b)
			st, err := c.audit.stage(context.Background(), b)
			require.NoError(t, err)
			var got []string
			for i, r := range st.rows {
				assert.Equal(t, uint64(tc.logged)+uint64(i), r.LeafIndex, "dense indices")
				l, err := auditor.ParseLeaf(r.Leaf)
				require.NoError(t, err)
				assert.Equal(t, auditor.LeafHash(r.Leaf), r.LeafHash)
				switch l.Kind {
				case auditor.KindGap:
					got = append(got, fmt.Sprintf("gap %d-%d", l.Offset, l.End))
				case auditor.KindTruncation:
					assert.Equal(t, int32(2), l.LeaderEpoch, "the new leader's epoch")
					assert.Equal(t, int64(5), l.TimestampMs, "when the tap was told")
					got = append(got, fmt.Sprintf("truncation %d", l.Offset))
				default:
					got = append(got, fmt.Sprintf("%s %d", l.Kind, l.Offset))
				}
				assert.Equal(t, i == len(st.rows)-1, len(r.State) > 0, "the state on the partition's last leaf only")
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
