package auditor_test

import (
	"context"
	"fmt"

	"github.com/weft-sh/weft/auditor"
)

// The tap's path for one record: commit to the stored row (with a fresh
// salt, stored apart) and, keyed, to the original; append the leaf to the
// partition's log (a gap leaf first when offsets jumped); store the
// entries' bytes, the salt and the log's state with the events batch; sign
// a checkpoint of the stored state now and then.
func Example() {
	signerKey, verifierKey, _ := auditor.GenerateKey("weft")
	signer, _ := auditor.NewSigner(signerKey)
	sourceKey, _ := auditor.ParseSourceKey(auditor.GenerateSourceKey())

	plog, _ := auditor.NewPartitionLog("orders", 0) // or ParsePartitionState(stored state)
	var leaves auditor.LeafHashList                 // what the store keeps, by leaf index
	for _, offset := range []int64{7, 8, 11} {
		row := auditor.StoredRecord{Key: []byte("ORD-1"), Value: []byte(`{"card":"411111******1111"}`),
			Columns: map[string]string{"order_id": "ORD-1"}}
		salt := auditor.NewSalt()
		stored, _ := row.Commit(salt)
		leaf := auditor.Leaf{Kind: auditor.KindRecord, Topic: "orders", Partition: 0, Offset: offset,
			LeaderEpoch: 3, TimestampMs: 1740830400000 + offset, Stored: stored,
			Source:   sourceKey.Commit(auditor.SourceRecord{Key: []byte("ORD-1"), Value: []byte(`{"card":"4111111111111111"}`)}),
			OrderTag: sourceKey.OrderTag("ORD-1")}
		entries, err := plog.AppendRecord(leaf) // auditor.ErrAlreadyLogged for a redelivery
		if err != nil {
			panic(err)
		}
		for _, e := range entries {
			fmt.Printf("leaf %d: %s at offset %d\n", e.Index, e.Leaf.Kind, e.Leaf.Offset)
			leaves = append(leaves, e.Hash)
		}
	}
	state, _ := plog.MarshalBinary() // stored atomically with the batch
	fmt.Println("state bytes:", len(state))

	cp, _ := signer.Sign(plog.Log().Checkpoint(auditor.LogOrigin("cluster-1", "orders", 0)))
	fmt.Println("checkpoint:", cp.Origin, cp.Size, "signed:", cp.Signed)

	// An auditor's side: the checkpoint opens with the verifier key, and a
	// proof read from the stored leaf hashes shows leaf 3 is in it.
	v, _ := auditor.NewVerifier(verifierKey)
	opened, err := v.Open(cp.Note, auditor.LogOrigin("cluster-1", "orders", 0))
	fmt.Println("signature:", err == nil, "size:", opened.Size)
	proofs, _ := auditor.Prove(context.Background(), leaves, auditor.ProofRequest{Size: opened.Size, Inclusion: []uint64{3}})
	fmt.Println("leaf 3 included:", auditor.VerifyInclusion(3, opened.Size, leaves[3], proofs.Inclusion[0], opened.Root) == nil)
	// Output:
	// leaf 0: record at offset 7
	// leaf 1: record at offset 8
	// leaf 2: gap at offset 9
	// leaf 3: record at offset 11
	// state bytes: 68
	// checkpoint: weft/cluster-1/orders/0 4 signed: true
	// signature: true size: 4
	// leaf 3 included: true
}
