package auditor

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/weft-sh/weft/auditor/internal/wire"
)

// Hash is a SHA-256 value: a leaf hash, a node of a tree, a root, a
// commitment.
type Hash = [sha256.Size]byte

// LeafVersion is the version byte that opens every leaf and action this
// package writes. A parser meeting another version refuses it.
const LeafVersion = 1

// Kind says what a leaf records.
type Kind uint8

// The leaf kinds. Their numbers are part of the encoding.
const (
	// KindRecord is a Kafka record weft stored.
	KindRecord Kind = 1
	// KindGap is a range of offsets the tap did not receive between two
	// records it did: transaction markers, aborted records, compaction,
	// retention, or loss. `weft audit verify --kafka` tells them apart.
	KindGap Kind = 2
	// KindTruncation marks a partition Kafka truncated (an unclean leader
	// election, a log cut below the tap's position): offsets from
	// Leaf.Offset on are logged again, under the new leader epoch, after
	// this leaf.
	KindTruncation Kind = 3
	// KindAction is an operator action, in the actions log (action.go).
	KindAction Kind = 4
)

func (k Kind) String() string {
	switch k {
	case KindRecord:
		return "record"
	case KindGap:
		return "gap"
	case KindTruncation:
		return "truncation"
	case KindAction:
		return "action"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MaxTopicLen is Kafka's limit on a topic name.
const MaxTopicLen = 249

// Leaf is one entry of a topic-partition's log: a record, a gap or a
// truncation. Its canonical bytes (MarshalBinary) are what the log hashes;
// docs/audit.md lays them out.
type Leaf struct {
	Kind      Kind
	Topic     string
	Partition int32
	// Offset is the record's offset; for a gap its first offset; for a
	// truncation the offset Kafka's new leader resumed at.
	Offset int64
	// End is, for a gap only, the offset after it: the gap covers the
	// half-open range [Offset, End), and End is the next record's offset.
	End int64
	// LeaderEpoch is the record's leader epoch (for a gap, the epoch of the
	// record after it; for a truncation, the new leader's); -1 when Kafka
	// did not say.
	LeaderEpoch int32
	// TimestampMs is the record's timestamp in milliseconds since the Unix
	// epoch (for a gap, the timestamp of the record after it; for a
	// truncation, when the tap was told of it). Per-record, never a batch's: compaction can change a batch's.
	TimestampMs int64
	// Stored commits to the row ClickHouse holds for a record
	// (StoredCommitment). Records only.
	Stored Hash
	// Source commits, keyed, to the record as it was on Kafka
	// (SourceKey.Commit); zero without a source key. Records only.
	Source Hash
	// OrderTag is SourceKey.OrderTag of the record's order id, so a later
	// proof can show which leaves belong to an order without naming it in
	// the log; zero without a source key or an order id. Records only.
	OrderTag Hash
}

// MarshalBinary returns the leaf's canonical bytes, or why the leaf is not
// valid (an empty topic, a negative offset, a gap that covers nothing...).
func (l Leaf) MarshalBinary() ([]byte, error) { return l.AppendBinary(make([]byte, 0, l.size())) }

// size is the length of the leaf's canonical bytes.
func (l Leaf) size() int {
	n := 1 + 1 + 4 + len(l.Topic) + 4 + 8 + 4 + 8
	switch l.Kind {
	case KindGap:
		n += 8
	case KindRecord:
		n += 3 * sha256.Size
	}
	return n
}

// AppendBinary appends the leaf's canonical bytes to b.
func (l Leaf) AppendBinary(b []byte) ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	w := wire.Writer{B: b}
	w.U8(LeafVersion)
	w.U8(uint8(l.Kind))
	w.String(l.Topic)
	w.I32(l.Partition)
	w.I64(l.Offset)
	if l.Kind == KindGap {
		w.I64(l.End)
	}
	w.I32(l.LeaderEpoch)
	w.I64(l.TimestampMs)
	if l.Kind == KindRecord {
		w.Hash(l.Stored)
		w.Hash(l.Source)
		w.Hash(l.OrderTag)
	}
	return w.B, nil
}

// Validate reports the first field that makes the leaf unencodable.
func (l Leaf) Validate() error {
	switch l.Kind {
	case KindRecord, KindGap, KindTruncation:
	case KindAction:
		return errors.New("leaf kind action: an action is an Action, not a Leaf")
	default:
		return fmt.Errorf("leaf kind %d: unknown", uint8(l.Kind))
	}
	if err := validTopic(l.Topic); err != nil {
		return fmt.Errorf("leaf topic: %w", err)
	}
	switch {
	case l.Partition < 0:
		return fmt.Errorf("leaf partition: %d is negative", l.Partition)
	case l.Offset < 0:
		return fmt.Errorf("leaf offset: %d is negative", l.Offset)
	case l.LeaderEpoch < -1:
		return fmt.Errorf("leaf leader epoch: %d is below -1", l.LeaderEpoch)
	case l.Kind == KindGap && l.End <= l.Offset:
		return fmt.Errorf("gap leaf: end %d is not after start %d", l.End, l.Offset)
	case l.Kind != KindGap && l.End != 0:
		return fmt.Errorf("%s leaf: end is only for gaps, got %d", l.Kind, l.End)
	case l.Kind != KindRecord && (l.Stored != Hash{} || l.Source != Hash{} || l.OrderTag != Hash{}):
		return fmt.Errorf("%s leaf: commitments are only for records", l.Kind)
	}
	return nil
}

// ParseLeaf reads a leaf's canonical bytes. It is strict: an unknown
// version or kind, an over-long or invalid field, or trailing bytes are
// errors naming the field, so the bytes it accepts are exactly those
// MarshalBinary writes for the leaf it returns.
func ParseLeaf(b []byte) (Leaf, error) {
	r := wire.NewReader(b)
	if v := r.U8("version"); r.Err() == nil && v != LeafVersion {
		return Leaf{}, fmt.Errorf("leaf: version %d, this weft reads version %d", v, LeafVersion)
	}
	l := Leaf{Kind: Kind(r.U8("kind"))}
	if r.Err() == nil {
		switch l.Kind {
		case KindRecord, KindGap, KindTruncation:
		case KindAction:
			return Leaf{}, errors.New("leaf: kind action is an operator action (ParseAction)")
		default:
			return Leaf{}, fmt.Errorf("leaf: unknown kind %d", uint8(l.Kind))
		}
	}
	l.Topic = r.String("topic", MaxTopicLen)
	l.Partition = r.I32("partition")
	l.Offset = r.I64("offset")
	if l.Kind == KindGap {
		l.End = r.I64("end")
	}
	l.LeaderEpoch = r.I32("leader epoch")
	l.TimestampMs = r.I64("timestamp")
	if l.Kind == KindRecord {
		l.Stored = r.Hash("stored commitment")
		l.Source = r.Hash("source commitment")
		l.OrderTag = r.Hash("order tag")
	}
	if err := r.Done(); err != nil {
		return Leaf{}, fmt.Errorf("leaf: %w", err)
	}
	if err := l.Validate(); err != nil {
		return Leaf{}, err
	}
	return l, nil
}

// LeafHash is the RFC 6962 hash of a log entry: SHA-256(0x00 ‖ bytes), as
// the merkle module's hasher computes it, here in a pooled buffer (once
// per record on the tap: nothing allocated).
func LeafHash(leafBytes []byte) Hash {
	buf := scratch.Get().(*[]byte)
	defer scratch.Put(buf)
	b := append(append((*buf)[:0], rfc6962.RFC6962LeafHashPrefix), leafBytes...)
	*buf = b[:0]
	return sha256.Sum256(b)
}

// validTopic applies Kafka's rule for topic names: 1 to 249 of
// [a-zA-Z0-9._-], neither "." nor "..".
func validTopic(t string) error {
	if t == "" {
		return errors.New("empty")
	}
	if len(t) > MaxTopicLen {
		return fmt.Errorf("%d bytes, Kafka allows %d", len(t), MaxTopicLen)
	}
	if t == "." || t == ".." {
		return fmt.Errorf("%q is not a Kafka topic name", t)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%q: byte %d (%q) is not one Kafka allows", t, i, c)
		}
	}
	return nil
}
