package auditor

import (
	"errors"
	"fmt"

	"github.com/weft-sh/weft/auditor/internal/wire"
)

// PartitionStateVersion opens a PartitionLog's serialised state.
const PartitionStateVersion = 1

// ErrAlreadyLogged is returned for a record whose offset the log has
// passed: a redelivery (after a rebalance or a restart) that the tap must
// drop, so no record is logged twice.
var ErrAlreadyLogged = errors.New("offset already logged")

// Entry is one leaf appended to a log: what the tap stores beside the
// events batch (index, bytes) and what the log hashed.
type Entry struct {
	Index uint64
	Leaf  Leaf
	Bytes []byte
	Hash  Hash
}

// PartitionLog is the log of one topic-partition and the Kafka position it
// has reached: leaf indices are dense, in the order weft stored the
// records, and every offset from the first record on is accounted for by a
// record or a gap leaf. Not safe for concurrent use; Clone to stage a
// batch.
type PartitionLog struct {
	topic     string
	partition int32
	log       *Log
	next      int64 // the offset after the last leaf's, -1 before any
}

// NewPartitionLog returns the empty log of a topic-partition.
func NewPartitionLog(topic string, partition int32) (*PartitionLog, error) {
	if err := validTopic(topic); err != nil {
		return nil, fmt.Errorf("partition log topic: %w", err)
	}
	if partition < 0 {
		return nil, fmt.Errorf("partition log: partition %d is negative", partition)
	}
	return &PartitionLog{topic: topic, partition: partition, log: NewLog(), next: -1}, nil
}

// Log is the Merkle log: its size, root and checkpoint.
func (p *PartitionLog) Log() *Log { return p.log }

// Next is the offset the next record should have: the one after the last
// leaf's, or -1 before the first record.
func (p *PartitionLog) Next() int64 { return p.next }

// Clone returns an independent copy.
func (p *PartitionLog) Clone() *PartitionLog {
	c := *p
	c.log = p.log.Clone()
	return &c
}

// AppendRecord appends a record leaf, preceded by a gap leaf when its
// offset is past Next (the gap carries the record's epoch and timestamp).
// A record before Next is ErrAlreadyLogged and appends nothing; so is a
// leaf of another topic-partition or kind an error.
func (p *PartitionLog) AppendRecord(rec Leaf) ([]Entry, error) {
	if rec.Kind != KindRecord || rec.Topic != p.topic || rec.Partition != p.partition {
		return nil, fmt.Errorf("partition log %s/%d: cannot append a %s leaf of %s/%d", p.topic, p.partition, rec.Kind, rec.Topic, rec.Partition)
	}
	if p.next >= 0 && rec.Offset < p.next {
		return nil, fmt.Errorf("%s/%d@%d: next is %d: %w", p.topic, p.partition, rec.Offset, p.next, ErrAlreadyLogged)
	}
	var room [2]Leaf
	leaves := room[:0]
	if p.next >= 0 && rec.Offset > p.next {
		leaves = append(leaves, Leaf{Kind: KindGap, Topic: p.topic, Partition: p.partition,
			Offset: p.next, End: rec.Offset, LeaderEpoch: rec.LeaderEpoch, TimestampMs: rec.TimestampMs})
	}
	entries, err := p.append(append(leaves, rec)...)
	if err != nil {
		return nil, err
	}
	p.next = rec.Offset + 1
	return entries, nil
}

// StartAt says where an empty log's account of the partition begins: the
// offset the tap began reading from. Its first record, when past offset
// (the partition opened with an aborted transaction, control records or
// compacted records), is then preceded by a gap leaf from offset. Only an
// empty log can be started, and at an offset ≥ 0.
func (p *PartitionLog) StartAt(offset int64) error {
	if p.log.Size() != 0 || p.next >= 0 {
		return fmt.Errorf("%s/%d: start at %d: the log already accounts from %d", p.topic, p.partition, offset, p.next)
	}
	if offset < 0 {
		return fmt.Errorf("%s/%d: start at offset %d", p.topic, p.partition, offset)
	}
	p.next = offset
	return nil
}

// Truncated appends a truncation leaf: Kafka's new leader (epoch) resumed
// the partition at offset after the tap had read up to consumedTo (an
// unclean leader election, a log cut below the tap's position: franz-go's
// *kgo.ErrDataLoss). Records from offset on are then logged again; at
// Next itself (Kafka lost records the tap had read, and it reads on from
// where it was) the leaf marks the loss and no offset is logged twice.
// When consumedTo is past Next (the last offsets the tap read held no
// record it stored: aborted ones, markers), a gap leaf accounts for them
// first, so the log covers every offset the tap read. A truncation of an
// empty log, or to an offset past what the tap read, is an error.
func (p *PartitionLog) Truncated(consumedTo, offset int64, epoch int32, timestampMs int64) ([]Entry, error) {
	if p.log.Size() == 0 || offset < 0 || offset > max(consumedTo, p.next) {
		return nil, fmt.Errorf("%s/%d: truncation to %d is not within the offsets read (next %d, read to %d)",
			p.topic, p.partition, offset, p.next, consumedTo)
	}
	var leaves []Leaf
	if consumedTo > p.next {
		leaves = append(leaves, Leaf{Kind: KindGap, Topic: p.topic, Partition: p.partition,
			Offset: p.next, End: consumedTo, LeaderEpoch: -1, TimestampMs: timestampMs})
	}
	entries, err := p.append(append(leaves, Leaf{Kind: KindTruncation, Topic: p.topic, Partition: p.partition,
		Offset: offset, LeaderEpoch: epoch, TimestampMs: timestampMs})...)
	if err != nil {
		return nil, err
	}
	p.next = offset
	return entries, nil
}

// Topic is the log's topic.
func (p *PartitionLog) Topic() string { return p.topic }

// Partition is the log's partition.
func (p *PartitionLog) Partition() int32 { return p.partition }

// append encodes and appends leaves, all or none.
func (p *PartitionLog) append(leaves ...Leaf) ([]Entry, error) {
	entries := make([]Entry, len(leaves))
	for i, l := range leaves {
		b, err := l.MarshalBinary()
		if err != nil {
			return nil, err
		}
		entries[i] = Entry{Index: p.log.Size() + uint64(i), Leaf: l, Bytes: b, Hash: LeafHash(b)}
	}
	for _, e := range entries {
		if _, err := p.log.Append(e.Hash); err != nil {
			return nil, err // only a corrupt range: the state was forged
		}
	}
	return entries, nil
}

// MarshalBinary serialises the state, for the tap to store beside each
// batch and resume from: version, topic, partition, next offset, and the
// Log's state (length-prefixed).
func (p *PartitionLog) MarshalBinary() ([]byte, error) {
	state, err := p.log.MarshalBinary()
	if err != nil {
		return nil, err
	}
	w := wire.Writer{}
	w.U8(PartitionStateVersion)
	w.String(p.topic)
	w.I32(p.partition)
	w.I64(p.next)
	w.Bytes(state)
	return w.B, nil
}

// ParsePartitionState reads what MarshalBinary wrote.
func ParsePartitionState(b []byte) (*PartitionLog, error) {
	r := wire.NewReader(b)
	if v := r.U8("version"); r.Err() == nil && v != PartitionStateVersion {
		return nil, fmt.Errorf("partition state: version %d, this weft reads version %d", v, PartitionStateVersion)
	}
	topic, partition, next := r.String("topic", MaxTopicLen), r.I32("partition"), r.I64("next offset")
	state := r.Bytes("log state", 9+64*32)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("partition state: %w", err)
	}
	p, err := NewPartitionLog(topic, partition)
	if err != nil {
		return nil, fmt.Errorf("partition state: %w", err)
	}
	if next < -1 {
		return nil, fmt.Errorf("partition state: next offset %d", next)
	}
	if p.log, err = ParseLogState(state); err != nil {
		return nil, fmt.Errorf("partition state: %w", err)
	}
	if (next == -1) != (p.log.Size() == 0) {
		return nil, fmt.Errorf("partition state: next offset %d with %d leaves", next, p.log.Size())
	}
	p.next = next
	return p, nil
}
