package auditor

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStoredCommitment(t *testing.T) {
	row := StoredRecord{Key: []byte("k"), Value: []byte("v"),
		Headers: []Header{{Name: "b", Value: []byte("2")}, {Name: "a", Value: []byte("9")}, {Name: "a", Value: []byte("1")}},
		Columns: map[string]string{"order_id": "ORD-1", "event_type": "x"}}
	b, err := row.MarshalBinary()
	require.NoError(t, err)
	salt := NewSalt()
	assert.NotEqual(t, salt, NewSalt(), "salts are random")
	c, err := row.Commit(salt)
	require.NoError(t, err)
	assert.Equal(t, StoredCommitment(salt, b), c)
	want := sha256.Sum256(append(append([]byte("weft/audit/c-stored/v1\x00"), salt[:]...), b...))
	assert.Equal(t, Hash(want), c, "SHA-256(tag ‖ salt ‖ row), as docs/audit.md says")

	// Header order does not matter: the encoding sorts; anything else does.
	swapped := row
	swapped.Headers = []Header{row.Headers[2], row.Headers[0], row.Headers[1]}
	c2, _ := swapped.Commit(salt)
	assert.Equal(t, c, c2)
	back, err := ParseStoredRecord(b)
	require.NoError(t, err)
	assert.Equal(t, []Header{{"a", []byte("1")}, {"a", []byte("9")}, {"b", []byte("2")}}, back.Headers)
	assert.Equal(t, row.Columns, back.Columns)
	for name, other := range map[string]StoredRecord{
		"key":    {Key: []byte("K"), Value: row.Value, Headers: row.Headers, Columns: row.Columns},
		"value":  {Key: row.Key, Value: []byte("w"), Headers: row.Headers, Columns: row.Columns},
		"header": {Key: row.Key, Value: row.Value, Headers: row.Headers[:2], Columns: row.Columns},
		"column": {Key: row.Key, Value: row.Value, Headers: row.Headers, Columns: map[string]string{"order_id": "ORD-2", "event_type": "x"}},
		// Field boundaries are in the encoding: moving a byte across is a change.
		"boundary": {Key: []byte("kv"), Value: nil, Headers: row.Headers, Columns: row.Columns},
	} {
		c3, err := other.Commit(salt)
		require.NoError(t, err)
		assert.NotEqual(t, c, c3, name)
	}
	c4, _ := row.Commit(NewSalt())
	assert.NotEqual(t, c, c4, "another salt")

	unsorted := append([]byte(nil), b...)
	// Swap the first two headers' values "1" and "9" in place: same sizes, wrong order.
	i := bytes.Index(unsorted, []byte("1"))
	j := bytes.Index(unsorted, []byte("9"))
	unsorted[i], unsorted[j] = '9', '1'
	_, err = ParseStoredRecord(unsorted)
	assert.ErrorContains(t, err, "canonical (sorted) order")
}

func TestSourceCommitment(t *testing.T) {
	k, err := NewSourceKey(bytes.Repeat([]byte{3}, 32))
	require.NoError(t, err)
	_, err = NewSourceKey(make([]byte, 31))
	assert.Error(t, err)
	rec := SourceRecord{Key: []byte("k"), Value: []byte("4111111111111111"), Headers: []Header{{Name: "h", Value: nil}}}
	c := k.Commit(rec)
	mac := hmac.New(sha256.New, bytes.Repeat([]byte{3}, 32))
	mac.Write([]byte("weft/audit/c-source/v1\x00"))
	mac.Write(rec.appendBinary(nil))
	assert.Equal(t, Hash(mac.Sum(nil)), c, "HMAC-SHA-256(K, tag ‖ record)")
	assert.NotEqual(t, Hash(sha256.Sum256(rec.Value)), c)
	for name, other := range map[string]SourceRecord{
		"null key":           {Key: nil, Value: rec.Value, Headers: rec.Headers},
		"empty header value": {Key: rec.Key, Value: rec.Value, Headers: []Header{{Name: "h", Value: []byte{}}}},
		"tombstone":          {Key: rec.Key, Value: nil, Headers: rec.Headers},
	} {
		assert.NotEqual(t, c, k.Commit(other), name)
	}
	other, _ := NewSourceKey(bytes.Repeat([]byte{4}, 32))
	assert.NotEqual(t, c, other.Commit(rec), "another key")

	// Safe for concurrent use (go test -race).
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if k.Commit(rec) != c {
					t.Error("a concurrent commitment differs")
					return
				}
				_ = k.OrderTag("ORD-1")
			}
		}()
	}
	wg.Wait()
}
