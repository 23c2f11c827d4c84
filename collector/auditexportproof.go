package collector

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/weft-sh/weft/auditor"
)

// The proofs of `weft audit export`: each leaf to the newest checkpoint of
// its log, one pass over each log's leaf hashes.

// prove computes the inclusion proofs of every record, one pass per
// partition's log, and of every action, in the actions log, each to the
// newest checkpoint of its log. Leaves no checkpoint covers yet refuse the
// export, counted per log.
func (x *exporter) prove(ctx context.Context) error {
	var uncovered []string
	records, actions := 0, 0
	for start := 0; start < len(x.records); {
		topic, part := x.records[start].pos.Topic, x.records[start].pos.Partition
		end := start + 1
		for end < len(x.records) && x.records[end].pos.Topic == topic && x.records[end].pos.Partition == part {
			end++
		}
		recs := x.records[start:end]
		start = end
		indices := make([]uint64, len(recs))
		for i, r := range recs {
			indices[i] = r.index
		}
		src := auditor.LeafSourceFunc(func(ctx context.Context, begin, end uint64, fn func(auditor.Hash) error) error {
			return x.store.AuditLeafHashes(ctx, topic, part, begin, end, fn)
		})
		proofs, size, err := x.proveLog(ctx, auditor.LogOrigin(x.o.ClusterID, topic, part), src, indices)
		if err != nil {
			return err
		}
		for i := range proofs {
			recs[i].proof = proofs[i]
		}
		if n := len(recs) - len(proofs); n > 0 {
			records += n
			uncovered = append(uncovered, fmt.Sprintf("%d in %s/%d, whose newest checkpoint covers %d leaves", n, topic, part, size))
		}
	}
	if len(x.actions) > 0 {
		indices := make([]uint64, len(x.actions))
		for i, a := range x.actions {
			indices[i] = a.index
		}
		src := auditor.LeafSourceFunc(func(ctx context.Context, begin, end uint64, fn func(auditor.Hash) error) error {
			return x.store.ActionLeafHashes(ctx, begin, end, fn)
		})
		proofs, size, err := x.proveLog(ctx, auditor.ActionsOrigin(x.o.ClusterID), src, indices)
		if err != nil {
			return err
		}
		for i := range proofs {
			x.actions[i].proof = proofs[i]
		}
		if n := len(indices) - len(proofs); n > 0 {
			actions += n
			uncovered = append(uncovered, fmt.Sprintf("%d operator actions, whose newest checkpoint covers %d", n, size))
		}
	}
	if len(uncovered) == 0 {
		return nil
	}
	what := fmt.Sprintf("%d of its %d records", records, len(x.records))
	if actions > 0 {
		what += fmt.Sprintf(" and %d of its %d operator actions", actions, len(x.actions))
	}
	return fmt.Errorf("order %q: %s are %w (%s); the tap checkpoints its logs as it stores records, once audit.checkpoint.every has passed or audit.checkpoint.every_leaves leaves were added since a log's last checkpoint, and when it stops: retry after that",
		x.o.OrderID, what, ErrNotCheckpointed, strings.Join(uncovered, "; "))
}

// proveLog returns the tlog-proofs of the leaves indices (ascending) of
// the log origin that its newest checkpoint covers — a prefix of indices —
// and that checkpoint's size (0 without one). The checkpoint must verify
// (every stored copy of it: two roots for one size are a fork), and the
// leaves src hands must rebuild its root.
func (x *exporter) proveLog(ctx context.Context, origin string, src auditor.LeafSource, indices []uint64) ([][]byte, uint64, error) {
	rows, err := x.store.Checkpoints(ctx, origin)
	if err != nil {
		return nil, 0, err
	}
	if len(rows) == 0 {
		return nil, 0, nil
	}
	size := rows[len(rows)-1].Size // rows are by size
	var cp auditor.SignedCheckpoint
	for _, r := range rows {
		if r.Size != size {
			continue
		}
		var sc auditor.SignedCheckpoint
		if x.o.Verifier != nil {
			sc, err = x.o.Verifier.Open(r.Note, origin)
		} else {
			sc, err = auditor.ParseCheckpoint(r.Note, origin)
		}
		switch {
		case err != nil:
			return nil, 0, fmt.Errorf("the newest checkpoint of %s (size %d): %w; run `weft audit verify`", origin, size, err)
		case sc.Size != size || (cp.Note != nil && sc.Root != cp.Root):
			return nil, 0, fmt.Errorf("%s %w: two checkpoints of size %d with different roots (a fork, or a rewritten checkpoint); run `weft audit verify`", origin, auditor.ErrTampered, size)
		}
		cp = sc
	}
	n, _ := slices.BinarySearch(indices, size)
	covered := indices[:n]
	if len(covered) == 0 {
		return nil, size, nil
	}
	p, err := auditor.Prove(ctx, src, auditor.ProofRequest{Size: size, Inclusion: covered})
	if err != nil {
		return nil, 0, fmt.Errorf("prove the leaves of %s at size %d (run `weft audit verify`): %w", origin, size, err)
	}
	if p.Root != cp.Root {
		return nil, 0, fmt.Errorf("%s %w: its stored leaves do not rebuild the root of its checkpoint at size %d; run `weft audit verify`", origin, auditor.ErrTampered, size)
	}
	out := make([][]byte, len(covered))
	for i, idx := range covered {
		out[i] = auditor.TLogProof(idx, p.Inclusion[i], cp)
	}
	return out, size, nil
}
