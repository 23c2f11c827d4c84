package auditor

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkLeaf is the tap's cost per stored record: the stored row's
// canonical bytes and C_stored, C_source and the order tag (keyed), the
// leaf's bytes and its hash. A 1.7 KB payload, as the bench's events.
func BenchmarkLeaf(b *testing.B) {
	row := StoredRecord{Key: []byte("ORD-123456"), Value: bytes.Repeat([]byte("x"), 1700),
		Headers: []Header{{Name: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}, {Name: "content-type", Value: []byte("application/json")}},
		Columns: map[string]string{"order_id": "ORD-123456", "event_type": "payment.captured", "service": "payments", "event_id": "e-1"}}
	src := SourceRecord{Key: row.Key, Value: row.Value, Headers: row.Headers}
	b.SetBytes(int64(len(row.Value)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		salt := NewSalt()
		stored, err := row.Commit(salt)
		if err != nil {
			b.Fatal(err)
		}
		leaf := Leaf{Kind: KindRecord, Topic: "orders", Partition: 3, Offset: int64(i), LeaderEpoch: 1, TimestampMs: 1740830400123,
			Stored: stored, Source: testSourceKey.Commit(src), OrderTag: testSourceKey.OrderTag("ORD-123456")}
		leafBytes, err := leaf.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		_ = LeafHash(leafBytes)
	}
}

// BenchmarkAppend is the cost of appending one leaf hash to a partition's
// log (the compact range's merges, amortised), with and without the gap
// check and encoding of PartitionLog.
func BenchmarkAppend(b *testing.B) {
	b.Run("log", func(b *testing.B) {
		l := NewLog()
		h := LeafHash([]byte("leaf"))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.Append(h); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("partition", func(b *testing.B) {
		p, _ := NewPartitionLog("orders", 3)
		leaf := Leaf{Kind: KindRecord, Topic: "orders", Partition: 3, LeaderEpoch: 1}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			leaf.Offset = int64(i)
			if _, err := p.AppendRecord(leaf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkProve is one inclusion proof read from a log of n leaves: the
// O(n) pass over the leaf hashes that the store will stream.
func BenchmarkProve(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 16} {
		leaves := testLeaves(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Prove(b.Context(), leaves, ProofRequest{Size: uint64(n), Inclusion: []uint64{uint64(n / 3)}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
