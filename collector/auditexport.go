package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/event"
)

// `weft audit export` (docs/audit.md, "Evidence bundle"): an order's
// evidence read out of ClickHouse — its record leaves, their stored rows
// and salts, inclusion proofs to the newest checkpoint of each log, and the
// operator actions on it — checked on the way, so that what is exported is
// what `weft audit verify-bundle` will verify.

// ExportOptions says which order to export, how to check the checkpoints,
// and what the manifest claims.
type ExportOptions struct {
	// ClusterID names the logs (audit.cluster_id).
	ClusterID string
	// OrderID is the order whose evidence is exported.
	OrderID string
	// Verifier checks every checkpoint the bundle carries; nil parses them
	// unchecked (verify-bundle checks them anyway).
	Verifier *auditor.Verifier
	// CreatedAt, WeftVersion and MaskPolicy are the manifest's claims:
	// when, by which weft, under which masking policy.
	CreatedAt   time.Time
	WeftVersion string
	MaskPolicy  string
}

// ErrNotCheckpointed marks an export refused because some of the order's
// leaves are not covered by a checkpoint yet: retrying after the tap's
// next checkpoint succeeds.
var ErrNotCheckpointed = errors.New("not covered by a checkpoint yet")

// maxExportProblems bounds the records an error names; it counts them all.
const maxExportProblems = 5

// ExportOrder reads the evidence of o.OrderID from store as a bundle:
// every record leaf tagged with the order, of every topic-partition, with
// its stored row and salt (none when erased, and then the erase action
// that names it), and every operator action on the order, each with an
// inclusion proof to the newest checkpoint of its log.
//
// It refuses, rather than export evidence that would not verify: a record
// whose stored row does not recompute to its leaf's C_stored (or has a
// second, different copy), a salt gone without an erase action naming the
// record, a leaf that does not hash to its leaf_hash, a checkpoint that
// does not verify or whose root the stored leaves do not rebuild. Those
// errors wrap auditor.ErrTampered and say to run `weft audit verify`.
// Leaves no checkpoint covers yet give an error wrapping
// ErrNotCheckpointed.
func ExportOrder(ctx context.Context, store *chstore.Store, o ExportOptions) (auditor.Bundle, error) {
	if err := auditor.ValidClusterID(o.ClusterID); err != nil {
		return auditor.Bundle{}, fmt.Errorf("audit.cluster_id: %w", err)
	}
	if o.OrderID == "" {
		return auditor.Bundle{}, errors.New("no order id")
	}
	if o.CreatedAt.IsZero() {
		o.CreatedAt = time.Now()
	}
	x := exporter{o: o, store: store}
	if err := x.readRecords(ctx); err != nil {
		return auditor.Bundle{}, err
	}
	if err := x.readActions(ctx); err != nil {
		return auditor.Bundle{}, err
	}
	if len(x.records) == 0 && len(x.actions) == 0 {
		return auditor.Bundle{}, fmt.Errorf("order %q: no audited records and no operator actions (a wrong order id, or events stored before audit.enabled was on)", o.OrderID)
	}
	if len(x.records) > auditor.MaxBundleEvents {
		return auditor.Bundle{}, fmt.Errorf("order %q has %d audited records; a bundle holds at most %d", o.OrderID, len(x.records), auditor.MaxBundleEvents)
	}
	if err := x.readRows(ctx); err != nil {
		return auditor.Bundle{}, err
	}
	if err := x.findErasures(ctx); err != nil {
		return auditor.Bundle{}, err
	}
	if err := x.prove(ctx); err != nil {
		return auditor.Bundle{}, err
	}
	return x.bundle(), nil
}

type exporter struct {
	o       ExportOptions
	store   *chstore.Store
	records []exportRecord // by topic, partition, leaf index
	actions []exportAction // by leaf index
}

// exportRecord is one record leaf of the order and what the bundle holds
// of it.
type exportRecord struct {
	pos   auditor.Position
	index uint64
	leaf  auditor.Leaf
	bytes []byte
	salt  []byte // empty once erased
	row   []byte // the matching stored row; nil when erased
	// erasedBy is the leaf index of the erase action naming the record.
	erasedBy uint64
	proof    []byte
}

func (r *exportRecord) erased() bool { return len(r.salt) == 0 }

// exportAction is one action of the actions log the bundle holds.
type exportAction struct {
	index  uint64
	action auditor.Action
	bytes  []byte
	proof  []byte
}

// readRecords reads the order's record leaves, checking each one on its
// own: a leaf stored twice by a retried insert counts once; two different
// leaves at one index, a leaf that does not hash to its leaf_hash or does
// not parse, or one record logged twice, refuse the export.
func (x *exporter) readRecords(ctx context.Context) error {
	var problems exportProblems
	seen := map[auditor.Position]bool{}
	err := x.store.AuditOrderLeaves(ctx, x.o.OrderID, func(r chstore.AuditLeafRow) error {
		if n := len(x.records); n > 0 {
			if last := &x.records[n-1]; last.pos.Topic == r.Topic && last.pos.Partition == r.Partition && last.index == r.LeafIndex {
				if !bytes.Equal(last.bytes, r.Leaf) {
					problems.add(last.pos, r.LeafIndex, "two different leaves stored at one index")
				}
				return nil
			}
		}
		pos := auditor.Position{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
		leaf, err := auditor.ParseLeaf(r.Leaf)
		switch {
		case auditor.LeafHash(r.Leaf) != r.LeafHash:
			problems.add(pos, r.LeafIndex, "the leaf does not hash to its leaf_hash")
		case err != nil:
			problems.add(pos, r.LeafIndex, "the leaf does not parse: "+err.Error())
		case leaf.Kind != auditor.KindRecord || leaf.Topic != r.Topic || leaf.Partition != r.Partition || leaf.Offset != r.Offset:
			problems.add(pos, r.LeafIndex, fmt.Sprintf("the leaf is a %s leaf of %s/%d@%d", leaf.Kind, leaf.Topic, leaf.Partition, leaf.Offset))
		case seen[pos]:
			problems.add(pos, r.LeafIndex, "the record is logged twice")
		case len(r.Salt) != 0 && len(r.Salt) != auditor.SaltSize:
			problems.add(pos, r.LeafIndex, fmt.Sprintf("a salt of %d bytes", len(r.Salt)))
		}
		seen[pos] = true
		x.records = append(x.records, exportRecord{pos: pos, index: r.LeafIndex, leaf: leaf, bytes: r.Leaf, salt: r.Salt})
		return nil
	})
	if err != nil {
		return err
	}
	return problems.err(x.o.OrderID, len(x.records), "leaves")
}

// readRows finds, for every record not erased, a stored copy of its row
// that recomputes to its leaf's C_stored. Identical copies (a redelivery
// the ReplacingMergeTree has not merged yet) count once; a record with no
// matching copy, or with a second, different one, refuses the export.
func (x *exporter) readRows(ctx context.Context) error {
	byPos := map[auditor.Position]*exportRecord{}
	for i := range x.records {
		byPos[x.records[i].pos] = &x.records[i]
	}
	copies := map[auditor.Position][][]byte{}
	err := x.store.AuditOrderEventRows(ctx, x.o.OrderID, func(e event.Event) error {
		pos := auditor.Position{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset}
		if r := byPos[pos]; r == nil || r.erased() {
			return nil // stored before the trail was on, or erased
		}
		row, err := StoredEvent(&e).MarshalBinary()
		if err != nil {
			row = nil // over the encoding's limits: matches no leaf
		}
		if !slices.ContainsFunc(copies[pos], func(c []byte) bool { return bytes.Equal(c, row) }) {
			copies[pos] = append(copies[pos], row)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var problems exportProblems
	for i := range x.records {
		r := &x.records[i]
		if r.erased() {
			continue
		}
		rows := copies[r.pos]
		salt := auditor.Salt(r.salt)
		match := slices.IndexFunc(rows, func(row []byte) bool {
			return row != nil && auditor.StoredCommitment(salt, row) == r.leaf.Stored
		})
		switch {
		case len(rows) == 0:
			problems.add(r.pos, r.index, "no events row of this order at that offset (deleted, or its order id changed)")
		case match < 0:
			problems.add(r.pos, r.index, "the stored row does not recompute to its leaf's C_stored (changed)")
		case len(rows) > 1:
			problems.add(r.pos, r.index, "a second, different row is stored for the record")
		default:
			r.row = rows[match]
		}
	}
	return problems.err(x.o.OrderID, len(x.records), "records")
}

// readActions reads the operator actions on the order, checking each: a
// leaf stored twice counts once; two different leaves at one index, or a
// leaf that does not hash to its leaf_hash or parse, refuse the export.
func (x *exporter) readActions(ctx context.Context) error {
	return x.scanActions(ctx, x.o.OrderID, nil)
}

// scanActions adds to x.actions the actions of orderID ("" for the whole
// log) that keep accepts (nil: all of them, each checked as readActions
// says). With keep set, actions that do not parse are passed over: only
// the ones kept matter, and the checkpoint's root, rebuilt from every
// leaf, still has to hold.
func (x *exporter) scanActions(ctx context.Context, orderID string, keep func(exportAction) bool) error {
	var problems exportProblems
	var prev *chstore.ActionRow
	err := x.store.ActionRows(ctx, orderID, func(r chstore.ActionRow) error {
		if prev != nil && prev.LeafIndex == r.LeafIndex {
			if keep == nil && !bytes.Equal(prev.Leaf, r.Leaf) {
				problems.addAction(r.LeafIndex, "two different actions stored at one index")
			}
			return nil
		}
		rr := r
		prev = &rr
		a, err := auditor.ParseAction(r.Leaf)
		switch {
		case keep != nil && (err != nil || auditor.LeafHash(r.Leaf) != r.LeafHash):
			return nil
		case auditor.LeafHash(r.Leaf) != r.LeafHash:
			problems.addAction(r.LeafIndex, "the leaf does not hash to its leaf_hash")
			return nil
		case err != nil:
			problems.addAction(r.LeafIndex, "the leaf does not parse: "+err.Error())
			return nil
		}
		ea := exportAction{index: r.LeafIndex, action: a, bytes: r.Leaf}
		if (keep == nil || keep(ea)) && !slices.ContainsFunc(x.actions, func(b exportAction) bool { return b.index == ea.index }) {
			x.actions = append(x.actions, ea)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(x.actions, func(a, b exportAction) int { return cmpU64(a.index, b.index) })
	return problems.err(x.o.OrderID, len(x.actions), "operator actions")
}

// findErasures names, for every erased record, the successful erase
// action whose targets list it: among the order's actions, else anywhere
// in the actions log (the action is then added to the bundle). A salt
// gone without such an action refuses the export.
func (x *exporter) findErasures(ctx context.Context) error {
	missing := map[auditor.Position]bool{}
	for i := range x.records {
		if r := &x.records[i]; r.erased() && !x.nameErasure(r) {
			missing[r.pos] = true
		}
	}
	if len(missing) == 0 {
		return nil
	}
	err := x.scanActions(ctx, "", func(a exportAction) bool {
		return isErasure(a.action) && slices.ContainsFunc(a.action.Targets, func(p auditor.Position) bool { return missing[p] })
	})
	if err != nil {
		return err
	}
	var problems exportProblems
	for i := range x.records {
		if r := &x.records[i]; r.erased() && !x.nameErasure(r) {
			problems.add(r.pos, r.index, "the salt is gone (erased?) and no successful erase action names the record")
		}
	}
	return problems.err(x.o.OrderID, len(x.records), "records")
}

// nameErasure sets r.erasedBy to the first successful erase action among
// x.actions that lists r, and reports whether there is one.
func (x *exporter) nameErasure(r *exportRecord) bool {
	for _, a := range x.actions {
		if isErasure(a.action) && a.action.Covers(r.pos) {
			r.erasedBy = a.index
			return true
		}
	}
	return false
}

func isErasure(a auditor.Action) bool {
	return a.Verb == "erase" && a.Outcome == auditor.OutcomeSuccess
}

// bundle assembles what x read.
func (x *exporter) bundle() auditor.Bundle {
	b := auditor.Bundle{Manifest: auditor.Manifest{Format: auditor.BundleFormat, Cluster: x.o.ClusterID, OrderID: x.o.OrderID,
		LeafVersion: auditor.LeafVersion, CreatedAt: x.o.CreatedAt.UTC().Truncate(time.Millisecond), Query: "order_id=" + x.o.OrderID,
		WeftVersion: x.o.WeftVersion, MaskPolicy: x.o.MaskPolicy,
		Events: []auditor.ManifestEvent{}, Actions: []auditor.ManifestAction{}}}
	actionAt := map[uint64]int{}
	for i, a := range x.actions {
		actionAt[a.index] = i
		b.Manifest.Actions = append(b.Manifest.Actions, auditor.ManifestAction{LeafIndex: a.index})
		b.Actions = append(b.Actions, auditor.ActionEvidence{Leaf: a.bytes, Proof: a.proof})
	}
	for _, r := range x.records {
		me := auditor.ManifestEvent{Topic: r.pos.Topic, Partition: r.pos.Partition, Offset: r.pos.Offset, LeafIndex: r.index}
		ev := auditor.EventEvidence{Leaf: r.bytes, Proof: r.proof}
		if r.erased() {
			i := actionAt[r.erasedBy]
			me.ErasedBy = &i
		} else {
			ev.Row, ev.Salt = r.row, r.salt
		}
		b.Manifest.Events = append(b.Manifest.Events, me)
		b.Events = append(b.Events, ev)
	}
	return b
}

// exportProblems collects what refuses an export, to name the first few
// and count them all in one error.
type exportProblems struct {
	n     int
	named []string
}

func (p *exportProblems) add(pos auditor.Position, index uint64, what string) {
	p.addf("%s (leaf %d): %s", pos, index, what)
}

func (p *exportProblems) addAction(index uint64, what string) {
	p.addf("action %d: %s", index, what)
}

func (p *exportProblems) addf(format string, a ...any) {
	p.n++
	if len(p.named) < maxExportProblems {
		p.named = append(p.named, fmt.Sprintf(format, a...))
	}
}

// err is nil without problems, else an error wrapping auditor.ErrTampered
// that says to run weft audit verify.
func (p *exportProblems) err(orderID string, of int, what string) error {
	if p.n == 0 {
		return nil
	}
	more := ""
	if p.n > len(p.named) {
		more = fmt.Sprintf("; and %d more", p.n-len(p.named))
	}
	return fmt.Errorf("order %q: the stored evidence %w: %d of its %d %s (%s%s); run `weft audit verify` to see every finding (an export never holds evidence that would not verify)",
		orderID, auditor.ErrTampered, p.n, of, what, strings.Join(p.named, "; "), more)
}
