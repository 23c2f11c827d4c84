package collector

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
)

// auditTrunc is a data loss Kafka reported for a partition (franz-go's
// *kgo.ErrDataLoss: an unclean leader election, or the log cut below the
// tap's position): the tap had read up to consumedTo and reads on from
// offset, under the leader epoch epoch. It is staged as a truncation leaf
// before the batch's records from index at on (docs/audit.md).
type auditTrunc struct {
	at         int // len(batch.auditRecs) when it was reported
	tp         topicPartition
	consumedTo int64
	offset     int64
	epoch      int32
	ms         int64 // when the tap was told
}

// noteFetches notes, for the batch being filled, what the audit trail
// needs of a poll besides its records: the data losses it reports (before
// the poll's records: franz-go reports a loss before it fetches from the
// new position) and the log start offset of partitions the batch sees for
// the first time.
func (t *auditTrail) noteFetches(b *batch, fetches kgo.Fetches, now time.Time) {
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		var loss *kgo.ErrDataLoss
		if errors.As(p.Err, &loss) {
			b.auditTruncs = append(b.auditTruncs, auditTrunc{at: len(b.auditRecs), tp: topicPartition{loss.Topic, loss.Partition},
				consumedTo: loss.ConsumedTo, offset: loss.ResetTo, epoch: loss.ResetToEpoch, ms: now.UnixMilli()})
		}
		if len(p.Records) == 0 {
			return
		}
		if b.logStarts == nil {
			b.logStarts = map[topicPartition]int64{}
		}
		tp := topicPartition{p.Topic, p.Partition}
		if _, ok := b.logStarts[tp]; !ok {
			b.logStarts[tp] = p.LogStartOffset
		}
	})
}

// truncate stages tr on its partition's log: a truncation leaf (after a
// gap leaf when the tap had read past its log's next offset). A loss on a
// log with no leaf yet marks nothing (the log starts at the records that
// follow); one the log cannot place is logged, and the records that follow
// are logged as usual.
func (t *auditTrail) truncate(st *auditStage, tr auditTrunc, last map[topicPartition]int) {
	l := t.staged(st, tr.tp)
	if l.p.Log().Size() == 0 {
		return
	}
	entries, err := l.p.Truncated(tr.consumedTo, tr.offset, tr.epoch, tr.ms)
	if err != nil {
		t.log.Warn().Err(err).Str("topic", tr.tp.topic).Int32("partition", tr.tp.partition).
			Msg("Kafka reported data loss the audit log cannot mark")
		return
	}
	t.log.Warn().Str("topic", tr.tp.topic).Int32("partition", tr.tp.partition).Int64("read_to", tr.consumedTo).
		Int64("resumed_at", tr.offset).Int32("leader_epoch", tr.epoch).Msg("Kafka lost records; the audit log marks the truncation")
	for _, e := range entries {
		st.rows = append(st.rows, chstore.AuditLeafRow{Topic: tr.tp.topic, Partition: tr.tp.partition, LeafIndex: e.Index,
			Kind: e.Leaf.Kind.String(), Offset: e.Leaf.Offset, End: e.Leaf.End, Leaf: e.Bytes, LeafHash: e.Hash})
		last[tr.tp] = len(st.rows) - 1
	}
}
