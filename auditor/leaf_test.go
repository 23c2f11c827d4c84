package auditor

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func goldenRecord() Leaf {
	return Leaf{Kind: KindRecord, Topic: "orders", Partition: 3, Offset: 1234, LeaderEpoch: 7, TimestampMs: 1740830400123,
		Stored: Hash(bytes.Repeat([]byte{0xaa}, 32)), Source: Hash(bytes.Repeat([]byte{0xbb}, 32)), OrderTag: Hash(bytes.Repeat([]byte{0xcc}, 32))}
}

// TestGolden pins every encoding byte for byte: a change to one is a new
// version, never a silent edit (go test ./auditor -run Golden -update
// rewrites them).
func TestGolden(t *testing.T) {
	row := StoredRecord{Key: []byte("ORD-1"), Value: []byte(`{"card":"411111******1111"}`),
		Headers: []Header{{Name: "b", Value: []byte("2")}, {Name: "a", Value: []byte("1")}},
		Columns: map[string]string{"order_id": "ORD-1", "event_type": "payment.captured"}}
	rowBytes, err := row.MarshalBinary()
	require.NoError(t, err)
	salt := Salt(bytes.Repeat([]byte{1}, SaltSize))
	stored := StoredCommitment(salt, rowBytes)
	source := testSourceKey.Commit(SourceRecord{Key: []byte("ORD-1"), Value: []byte(`{"card":"4111111111111111"}`), Headers: []Header{{Name: "b", Value: nil}}})
	tag := testSourceKey.OrderTag("ORD-1")
	log := NewLog()
	for i := range 11 {
		_, err := log.Append(LeafHash([]byte{byte(i)}))
		require.NoError(t, err)
	}
	state, err := log.MarshalBinary()
	require.NoError(t, err)
	action, err := Action{TimeMs: 1740830400123, Actor: "bob", Origin: "http 10.0.0.7:51200", Verb: "erase", Resource: "order/ORD-1",
		Outcome: OutcomeSuccess, Detail: "GDPR request 42", OrderTag: tag,
		Targets: []Position{{Topic: "orders", Partition: 3, Offset: 1234}, {Topic: "orders", Partition: 1, Offset: 9}}}.MarshalBinary()
	require.NoError(t, err)
	signer, _ := testKey(t)
	cp, err := signer.Sign(log.Checkpoint(LogOrigin("c1", "orders", 3)))
	require.NoError(t, err)

	for name, got := range map[string][]byte{
		"leaf-record.hex":     must(goldenRecord().MarshalBinary()),
		"leaf-gap.hex":        must(Leaf{Kind: KindGap, Topic: "orders", Partition: 3, Offset: 1235, End: 1240, LeaderEpoch: 7, TimestampMs: 1740830400500}.MarshalBinary()),
		"leaf-truncation.hex": must(Leaf{Kind: KindTruncation, Topic: "orders", Partition: 3, Offset: 1200, LeaderEpoch: 8, TimestampMs: 1740830400900}.MarshalBinary()),
		"action-erase.hex":    action,
		"stored-row.hex":      rowBytes,
		"commitments.hex":     append(append(append([]byte{}, stored[:]...), source[:]...), tag[:]...),
		"log-state-11.hex":    state,
		"checkpoint.note":     cp.Note,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			text := string(got)
			if strings.HasSuffix(name, ".hex") {
				text = hex.Dump(got)
			}
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run with -update to create it")
			assert.Equal(t, string(want), text)
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestLeafRoundTrip(t *testing.T) {
	for _, l := range []Leaf{
		goldenRecord(),
		{Kind: KindRecord, Topic: "a", LeaderEpoch: -1},
		{Kind: KindGap, Topic: strings.Repeat("t", MaxTopicLen), Partition: 1<<31 - 1, Offset: 0, End: 1<<63 - 1, LeaderEpoch: -1, TimestampMs: -5},
		{Kind: KindTruncation, Topic: "x.y_z-1", Offset: 42},
	} {
		b, err := l.MarshalBinary()
		require.NoError(t, err)
		got, err := ParseLeaf(b)
		require.NoError(t, err)
		assert.Equal(t, l, got)
	}
}

func TestLeafInvalid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leaf   Leaf
		reason string
	}{
		{"no kind", Leaf{Topic: "t"}, "unknown"},
		{"action", Leaf{Kind: KindAction, Topic: "t"}, "an action is an Action"},
		{"empty topic", Leaf{Kind: KindRecord}, "topic: empty"},
		{"long topic", Leaf{Kind: KindRecord, Topic: strings.Repeat("t", 250)}, "250 bytes"},
		{"bad topic", Leaf{Kind: KindRecord, Topic: "a/b"}, "not one Kafka allows"},
		{"negative offset", Leaf{Kind: KindRecord, Topic: "t", Offset: -1}, "negative"},
		{"negative partition", Leaf{Kind: KindRecord, Topic: "t", Partition: -1}, "negative"},
		{"epoch", Leaf{Kind: KindRecord, Topic: "t", LeaderEpoch: -2}, "below -1"},
		{"empty gap", Leaf{Kind: KindGap, Topic: "t", Offset: 5, End: 5}, "not after start"},
		{"end on a record", Leaf{Kind: KindRecord, Topic: "t", End: 5}, "only for gaps"},
		{"commitment on a gap", Leaf{Kind: KindGap, Topic: "t", End: 1, Stored: Hash{1}}, "only for records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.leaf.MarshalBinary()
			assert.ErrorContains(t, err, tc.reason)
		})
	}
}

func TestParseLeafRejects(t *testing.T) {
	good := must(goldenRecord().MarshalBinary())
	gap := must(Leaf{Kind: KindGap, Topic: "t", Offset: 1, End: 3}.MarshalBinary())
	withByte := func(b []byte, i int, v byte) []byte { c := bytes.Clone(b); c[i] = v; return c }
	for _, tc := range []struct {
		name   string
		in     []byte
		reason string
	}{
		{"empty", nil, "version: truncated"},
		{"version 2", withByte(good, 0, 2), "version 2"},
		{"unknown kind", withByte(good, 1, 9), "unknown kind 9"},
		{"action kind", withByte(good, 1, byte(KindAction)), "ParseAction"},
		{"trailing byte", append(bytes.Clone(good), 0), "1 trailing bytes"},
		{"truncated", good[:len(good)-1], "order tag: truncated"},
		{"overlong topic", withByte(good, 4, 0xff), "at most 249"},
		{"topic length past the end", withByte(good, 2, 0x7f), "at most 249"},
		{"gap backwards", withByte(gap, 26, 1), "not after start"},
		{"invalid topic", withByte(good, 6, '/'), "not one Kafka allows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLeaf(tc.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.reason)
		})
	}
}

func TestActionRoundTrip(t *testing.T) {
	a := Action{TimeMs: 1, Actor: "alice", Verb: "ack", Outcome: OutcomeDenied,
		Targets: []Position{{"b", 0, 1}, {"a", 2, 3}, {"a", 1, 9}}}
	b, err := a.MarshalBinary()
	require.NoError(t, err)
	got, err := ParseAction(b)
	require.NoError(t, err)
	assert.Equal(t, []Position{{"a", 1, 9}, {"a", 2, 3}, {"b", 0, 1}}, got.Targets, "sorted")
	assert.True(t, got.Covers(Position{"a", 2, 3}))
	assert.False(t, got.Covers(Position{"a", 2, 4}))
	_, err = ParseLeaf(b)
	assert.ErrorContains(t, err, "ParseAction")

	for _, tc := range []struct {
		name   string
		a      Action
		reason string
	}{
		{"no actor", Action{Verb: "ack", Outcome: OutcomeSuccess}, "actor: empty"},
		{"no verb", Action{Actor: "a", Outcome: OutcomeSuccess}, "verb: empty"},
		{"verb case", Action{Actor: "a", Verb: "Erase", Outcome: OutcomeSuccess}, "lower case"},
		{"outcome", Action{Actor: "a", Verb: "ack"}, "outcome 0"},
		{"twice", Action{Actor: "a", Verb: "ack", Outcome: OutcomeSuccess, Targets: []Position{{"t", 0, 1}, {"t", 0, 1}}}, "listed twice"},
		{"detail", Action{Actor: "a", Verb: "ack", Outcome: OutcomeSuccess, Detail: strings.Repeat("x", MaxDetailLen+1)}, "detail: 4097 bytes"},
		{"utf8", Action{Actor: "a\xff", Verb: "ack", Outcome: OutcomeSuccess}, "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.a.MarshalBinary()
			assert.ErrorContains(t, err, tc.reason)
		})
	}
}

// FuzzParseLeaf: ParseLeaf never panics, and what it accepts is canonical:
// it re-encodes to exactly the bytes parsed.
func FuzzParseLeaf(f *testing.F) {
	f.Add(must(goldenRecord().MarshalBinary()))
	f.Add(must(Leaf{Kind: KindGap, Topic: "t", Offset: 1, End: 3}.MarshalBinary()))
	f.Add(must(Leaf{Kind: KindTruncation, Topic: "t", Offset: 1}.MarshalBinary()))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLeaf(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a reason")
			}
			return
		}
		again, err := l.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, which re-encodes to %x (%v)", b, again, err)
		}
	})
}

// FuzzParseAction: as FuzzParseLeaf, for actions.
func FuzzParseAction(f *testing.F) {
	f.Add(must(Action{TimeMs: 1, Actor: "a", Verb: "erase", Outcome: OutcomeSuccess, Targets: []Position{{"t", 0, 1}, {"t", 0, 2}}}.MarshalBinary()))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAction(b)
		if err != nil {
			return
		}
		again, err := a.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, which re-encodes to %x (%v)", b, again, err)
		}
	})
}

// FuzzParseStoredRecord: as FuzzParseLeaf, for stored rows.
func FuzzParseStoredRecord(f *testing.F) {
	f.Add(must(StoredRecord{Key: []byte("k"), Value: []byte("v"), Headers: []Header{{"a", []byte("1")}, {"a", []byte("2")}},
		Columns: map[string]string{"order_id": "o", "x": ""}}.MarshalBinary()))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStoredRecord(b)
		if err != nil {
			return
		}
		again, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, which re-encodes to %x (%v)", b, again, err)
		}
	})
}
