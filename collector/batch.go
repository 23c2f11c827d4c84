package collector

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
)

// batch is what is stored and committed together: the rows of a run of
// polled records, and the offsets to commit once they are stored.
type batch struct {
	events     []event.Event
	quarantine []event.Quarantined
	// offsets is, per topic and partition, the offset after the last record
	// of the batch with its leader epoch: what is committed after the insert.
	offsets map[string]map[int32]kgo.EpochOffset
	tok     string

	// The audit trail's part (audit.go), with the trail on: each stored
	// record's leaf in poll order, computed when it was polled; an error
	// computing one; and the leaves staged on the partitions' logs by the
	// first insert attempt, which every retry stores again.
	auditRecs  []auditRec
	auditErr   error
	auditStage *auditStage
	// auditTruncs are the data losses Kafka reported while the batch
	// filled, each before the records polled after it; logStarts, per
	// partition, the log start offset Kafka reported with the batch's first
	// records of it; restaged counts the times the leaves were staged again
	// because another tap moved a log on.
	auditTruncs []auditTrunc
	logStarts   map[topicPartition]int64
	restaged    int
	auditRows   []chstore.AuditLeafRow // the stage's rows, their storage kept for the next
}

// topicPartition names one partition of one topic.
type topicPartition struct {
	topic     string
	partition int32
}

func newBatch() *batch { return &batch{offsets: map[string]map[int32]kgo.EpochOffset{}} }

func (b *batch) len() int { return len(b.events) + len(b.quarantine) }

// note records that r is in the batch.
func (b *batch) note(r *kgo.Record) {
	parts := b.offsets[r.Topic]
	if parts == nil {
		parts = map[int32]kgo.EpochOffset{}
		b.offsets[r.Topic] = parts
	}
	next := kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
	if at, ok := parts[r.Partition]; !ok || at.Less(next) {
		parts[r.Partition] = next
	}
}

func (b *batch) reset() {
	clear(b.events) // drop references to payloads before the slice is reused
	clear(b.quarantine)
	b.events = b.events[:0]
	b.quarantine = b.quarantine[:0]
	b.offsets = map[string]map[int32]kgo.EpochOffset{}
	b.tok = ""
	clear(b.auditRecs)
	b.auditRecs, b.auditErr, b.auditStage = b.auditRecs[:0], nil, nil
	b.auditTruncs, b.restaged = b.auditTruncs[:0], 0
	clear(b.logStarts)
	clear(b.auditRows)
	b.auditRows = b.auditRows[:0]
}

// token names the batch by the offset range it holds of each partition
// and the leader epoch of its last record there:
// topic:partition:first-last@epoch, sorted, hashed. It is computed once,
// so every retry of the batch carries the same token.
func (b *batch) token() string {
	if b.tok != "" {
		return b.tok
	}
	ranges := map[topicPartition][2]int64{}
	note := func(topic string, part int32, off int64) {
		k := topicPartition{topic, part}
		r, ok := ranges[k]
		if !ok {
			ranges[k] = [2]int64{off, off}
			return
		}
		ranges[k] = [2]int64{min(r[0], off), max(r[1], off)}
	}
	for i := range b.events {
		note(b.events[i].Topic, b.events[i].Partition, b.events[i].Offset)
	}
	for i := range b.quarantine {
		note(b.quarantine[i].Topic, b.quarantine[i].Partition, b.quarantine[i].Offset)
	}
	parts := make([]string, 0, len(ranges))
	for k, r := range ranges {
		// The leader epoch tells apart records Kafka put at offsets it
		// had given other records before a truncation (docs/audit.md).
		epoch := b.offsets[k.topic][k.partition].Epoch
		parts = append(parts, fmt.Sprintf("%s:%d:%d-%d@%d", k.topic, k.partition, r[0], r[1], epoch))
	}
	sort.Strings(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, ",")))
	b.tok = "weft:" + hex.EncodeToString(sum[:16])
	return b.tok
}
