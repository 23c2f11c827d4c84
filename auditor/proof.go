package auditor

import (
	"context"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// LeafSource gives the leaf hashes of one log in index order: the tap's
// store reads them from ClickHouse, a test from a slice.
type LeafSource interface {
	// LeafHashes calls fn with the hash of every leaf in [begin, end), in
	// index order, and stops at fn's first error, returning it.
	LeafHashes(ctx context.Context, begin, end uint64, fn func(Hash) error) error
}

// LeafSourceFunc adapts a function to a LeafSource.
type LeafSourceFunc func(ctx context.Context, begin, end uint64, fn func(Hash) error) error

// LeafHashes calls f.
func (f LeafSourceFunc) LeafHashes(ctx context.Context, begin, end uint64, fn func(Hash) error) error {
	return f(ctx, begin, end, fn)
}

// LeafHashList is a LeafSource held in memory, for tests and small logs.
type LeafHashList []Hash

// LeafHashes yields the list's [begin, end).
func (s LeafHashList) LeafHashes(ctx context.Context, begin, end uint64, fn func(Hash) error) error {
	if end > uint64(len(s)) || begin > end {
		return fmt.Errorf("leaves [%d, %d) out of a list of %d", begin, end, len(s))
	}
	for _, h := range s[begin:end] {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(h); err != nil {
			return err
		}
	}
	return nil
}

// ProofRequest asks for proofs within the tree of Size leaves.
type ProofRequest struct {
	// Size is the tree size the proofs are for (a checkpoint's).
	Size uint64
	// Inclusion lists leaf indices to prove included, each < Size.
	Inclusion []uint64
	// ConsistencyFrom lists earlier sizes, each ≤ Size, to prove the tree
	// of Size extends.
	ConsistencyFrom []uint64
}

// Proofs are the answer to a ProofRequest, in the request's order.
type Proofs struct {
	// Root is the tree's root at Size, recomputed from the leaves: compare
	// it with the signed checkpoint's before handing the proofs out.
	Root        Hash
	Inclusion   [][]Hash
	Consistency [][]Hash
}

// Prove computes every proof of req in one pass over the leaves [0, Size)
// of src: O(Size) reads, O(log Size) memory per proof, whatever the size.
// Each proof node is the root of a perfect subtree; the merkle module's
// proof.Inclusion and proof.Consistency name the nodes, the compact range
// that rebuilds the tree reports each node's hash as it completes, and
// Nodes.Rehash folds them into the RFC 6962 proof.
func Prove(ctx context.Context, src LeafSource, req ProofRequest) (Proofs, error) {
	var plans []proof.Nodes
	for _, i := range req.Inclusion {
		n, err := proof.Inclusion(i, req.Size)
		if err != nil {
			return Proofs{}, fmt.Errorf("inclusion proof: %w", err)
		}
		plans = append(plans, n)
	}
	for _, s := range req.ConsistencyFrom {
		n, err := proof.Consistency(s, req.Size)
		if err != nil {
			return Proofs{}, fmt.Errorf("consistency proof: %w", err)
		}
		plans = append(plans, n)
	}
	want := map[compact.NodeID][]byte{}
	for _, p := range plans {
		for _, id := range p.IDs {
			want[id] = nil
		}
	}
	visit := func(id compact.NodeID, h []byte) {
		if _, ok := want[id]; ok {
			want[id] = h
		}
	}
	cr := rangeFactory.NewEmptyRange(0)
	err := src.LeafHashes(ctx, 0, req.Size, func(h Hash) error {
		if cr.End() == req.Size {
			return errors.New("more leaves than asked for")
		}
		return cr.Append(append([]byte(nil), h[:]...), visit)
	})
	if err != nil {
		return Proofs{}, fmt.Errorf("read leaves [0, %d): %w", req.Size, err)
	}
	if cr.End() != req.Size {
		return Proofs{}, fmt.Errorf("read leaves [0, %d): got %d", req.Size, cr.End())
	}
	out := Proofs{Root: (&Log{r: cr}).Root()}
	for i, p := range plans {
		hashes := make([][]byte, len(p.IDs))
		for j, id := range p.IDs {
			hashes[j] = want[id]
		}
		folded, err := p.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
		if err != nil {
			return Proofs{}, err
		}
		fixed := make([]Hash, len(folded))
		for j, h := range folded {
			fixed[j] = Hash(h)
		}
		if i < len(req.Inclusion) {
			out.Inclusion = append(out.Inclusion, fixed)
		} else {
			out.Consistency = append(out.Consistency, fixed)
		}
	}
	return out, nil
}

// VerifyInclusion checks that leafHash is leaf index of the tree of size
// leaves whose root is root, with the merkle module's verifier.
func VerifyInclusion(index, size uint64, leafHash Hash, proofHashes []Hash, root Hash) error {
	return proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leafHash[:], slices2(proofHashes), root[:])
}

// VerifyConsistency checks that the tree of size2 leaves and root2 extends
// the tree of size1 leaves and root1, with the merkle module's verifier.
func VerifyConsistency(size1, size2 uint64, proofHashes []Hash, root1, root2 Hash) error {
	return proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, slices2(proofHashes), root1[:], root2[:])
}

// VerifyExtends checks that the log to is the log from with the leaves
// [from.Size(), to.Size()) of src appended: how a tap that resumes from a
// stored state proves it did not fork from its last signed checkpoint
// (docs/audit.md, "Never two inconsistent checkpoints").
func VerifyExtends(ctx context.Context, from *Log, src LeafSource, to *Log) error {
	if from.Size() > to.Size() {
		return fmt.Errorf("log of %d leaves cannot extend one of %d", to.Size(), from.Size())
	}
	l := from.Clone()
	err := src.LeafHashes(ctx, from.Size(), to.Size(), func(h Hash) error {
		if l.Size() == to.Size() {
			return errors.New("more leaves than asked for")
		}
		_, err := l.Append(h)
		return err
	})
	if err != nil {
		return fmt.Errorf("read leaves [%d, %d): %w", from.Size(), to.Size(), err)
	}
	if l.Size() != to.Size() {
		return fmt.Errorf("read leaves [%d, %d): got %d", from.Size(), to.Size(), l.Size()-from.Size())
	}
	if !l.Equal(to) {
		return fmt.Errorf("the log of %d leaves does not extend the log of %d with the stored leaves: it forked", to.Size(), from.Size())
	}
	return nil
}

func slices2(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}
