package auditor

import (
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/merkle/rfc6962"
)

// TestStoredColumnList: columns given as a list in canonical order encode
// to the bytes of the same columns given as a map; a list out of order,
// with a name twice, or beside a map is refused, never encoded otherwise.
func TestStoredColumnList(t *testing.T) {
	m := StoredRecord{Key: []byte("k"), Value: []byte("v"), Headers: []Header{{"a", []byte("1")}},
		Columns: map[string]string{"order_id": "ORD-1", "event_type": "OrderPlaced", "table": "events"}}
	l := m
	l.Columns, l.ColumnList = nil, []Column{{"event_type", "OrderPlaced"}, {"order_id", "ORD-1"}, {"table", "events"}}
	want, err := m.MarshalBinary()
	require.NoError(t, err)
	got, err := l.MarshalBinary()
	require.NoError(t, err)
	assert.Equal(t, want, got)
	salt := NewSalt()
	cm, err := m.Commit(salt)
	require.NoError(t, err)
	cl, err := l.Commit(salt)
	require.NoError(t, err)
	assert.Equal(t, cm, cl)
	assert.Equal(t, StoredCommitment(salt, want), cl)

	for name, cols := range map[string][]Column{
		"out of order": {{"order_id", "ORD-1"}, {"event_type", "OrderPlaced"}},
		"repeated":     {{"order_id", "ORD-1"}, {"order_id", "ORD-2"}},
	} {
		bad := l
		bad.ColumnList = cols
		_, err := bad.MarshalBinary()
		assert.ErrorContains(t, err, "out of order or repeated", name)
		_, err = bad.Commit(salt)
		assert.Error(t, err, name)
	}
	both := l
	both.Columns = m.Columns
	_, err = both.MarshalBinary()
	assert.ErrorContains(t, err, "both")
}

// TestHashesAreRFC6962: the leaf and node hashes computed in pooled
// buffers are the merkle module's, and a leaf's bytes are as long as
// computed up front.
func TestHashesAreRFC6962(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 33, 200, 5000} {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		assert.Equal(t, Hash(rfc6962.DefaultHasher.HashLeaf(b)), LeafHash(b), n)
	}
	for _, sizes := range [][2]int{{32, 32}, {0, 32}, {32, 5}} {
		l, r := make([]byte, sizes[0]), make([]byte, sizes[1])
		_, _ = rand.Read(l)
		_, _ = rand.Read(r)
		assert.Equal(t, rfc6962.DefaultHasher.HashChildren(l, r), hashChildren(l, r), sizes)
	}
	for _, l := range []Leaf{
		{Kind: KindRecord, Topic: "orders", Partition: 1, Offset: 5, LeaderEpoch: -1, TimestampMs: 1},
		{Kind: KindGap, Topic: "o", Offset: 5, End: 9},
		{Kind: KindTruncation, Topic: "a.b-c_d", Offset: 3},
	} {
		b, err := l.MarshalBinary()
		require.NoError(t, err)
		assert.Len(t, b, l.size(), l.Kind)
	}
}
