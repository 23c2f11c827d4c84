package auditor

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// Report is what a verified bundle proves: for each event, that its leaf
// is in its partition's log under a checkpoint signed by the key (and,
// unless erased, that the row in the bundle is the row that leaf commits
// to); for each operator action, likewise in the actions log.
type Report struct {
	Format  string `json:"format"`
	Cluster string `json:"cluster"`
	OrderID string `json:"order_id"`
	// Authenticated is true when every checkpoint's signature was checked
	// with VerifierKey. Without a key nothing is authenticated: the bundle
	// is then only shown to be consistent with itself.
	Authenticated bool               `json:"authenticated"`
	VerifierKey   string             `json:"verifier_key,omitempty"`
	Checkpoints   []CheckpointReport `json:"checkpoints"`
	Events        []EventReport      `json:"events"`
	Actions       []ActionReport     `json:"actions"`
	// Claims are the manifest's descriptive fields: what the exporter
	// says, not proven by any signature.
	Claims Claims `json:"claims"`
}

// CheckpointReport is one checkpoint the bundle's proofs reach.
type CheckpointReport struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   string `json:"root"` // base64, as in the checkpoint
	Signed bool   `json:"signed"`
}

// EventReport is what one event's evidence proves.
type EventReport struct {
	Position
	LeafIndex uint64 `json:"leaf_index"`
	// Log is the origin of the log and CheckpointSize the size of the
	// checkpoint the leaf's inclusion proof reaches.
	Log            string `json:"log"`
	CheckpointSize uint64 `json:"checkpoint_size"`
	LeaderEpoch    int32  `json:"leader_epoch"`
	Timestamp      Millis `json:"timestamp"`
	// Status is "verified" (row, leaf and proof hold) or "erased" (leaf
	// and proof hold; the row was removed by Erasure's action).
	Status  string         `json:"status"`
	Row     *RowReport     `json:"row,omitempty"`
	Erasure *ErasureReport `json:"erasure,omitempty"`
	// SourceCommitted says the leaf carries C_source, which weft checks
	// against Kafka with the source key (`weft audit verify --kafka`).
	SourceCommitted bool `json:"source_committed"`
}

// RowReport is the stored row an event's leaf commits to.
type RowReport struct {
	Key     string            `json:"key"`
	Value   string            `json:"value"`
	Headers []HeaderReport    `json:"headers"`
	Columns map[string]string `json:"columns"`
}

// HeaderReport is one stored header, as text.
type HeaderReport struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ErasureReport names the action that erased an event's row.
type ErasureReport struct {
	Action int    `json:"action"`
	Actor  string `json:"actor"`
	Time   Millis `json:"time"`
	Reason string `json:"reason"`
}

// ActionReport is one proven operator action.
type ActionReport struct {
	LeafIndex      uint64     `json:"leaf_index"`
	CheckpointSize uint64     `json:"checkpoint_size"`
	Time           Millis     `json:"time"`
	Actor          string     `json:"actor"`
	Origin         string     `json:"origin"`
	Verb           string     `json:"verb"`
	Resource       string     `json:"resource"`
	Outcome        string     `json:"outcome"`
	Detail         string     `json:"detail"`
	Targets        []Position `json:"targets"`
}

// Millis is a time in milliseconds since the Unix epoch, as leaves carry
// it; in JSON an RFC 3339 string in UTC, whatever the year (a producer may
// set any timestamp).
type Millis int64

// Time is m as a time in UTC.
func (m Millis) Time() time.Time { return time.UnixMilli(int64(m)).UTC() }

// MarshalJSON writes m as an RFC 3339 string.
func (m Millis) MarshalJSON() ([]byte, error) {
	return []byte(`"` + m.Time().Format(time.RFC3339Nano) + `"`), nil
}

// UnmarshalJSON reads what MarshalJSON writes (years 0 to 9999).
func (m *Millis) UnmarshalJSON(b []byte) error {
	t, err := time.Parse(`"`+time.RFC3339Nano+`"`, string(b))
	if err != nil {
		return err
	}
	*m = Millis(t.UnixMilli())
	return nil
}

// Claims are the manifest's unauthenticated fields.
type Claims struct {
	CreatedAt   time.Time `json:"created_at"`
	Query       string    `json:"query"`
	WeftVersion string    `json:"weft_version"`
	MaskPolicy  string    `json:"mask_policy"`
}

// VerifyBundle checks a bundle with nothing but the verifier key: every
// checkpoint's signature; for every event, row → C_stored (with its salt)
// → leaf bytes → leaf hash → inclusion proof → the signed root of its
// partition's log, and that the leaf names the record the manifest lists;
// for every action, its leaf's inclusion in the actions log; an erased
// event's erasure by an erase action that names it. A log that signed two
// roots for one size is reported as forked.
//
// An error wraps ErrTampered when evidence was checked and does not hold,
// ErrUnverifiable when a checkpoint is not signed by the key (or unsigned).
// With an empty verifierKey signatures are not checked, and a bundle that
// is otherwise consistent gives a Report with Authenticated false and no
// error.
func VerifyBundle(b Bundle, verifierKey string) (Report, error) {
	var v *Verifier
	if verifierKey != "" {
		var err error
		if v, err = NewVerifier(verifierKey); err != nil {
			return Report{}, err
		}
	}
	vb := bundleVerifier{b: b, v: v, roots: map[string]map[uint64]Hash{}}
	rep, err := vb.verify()
	if err != nil {
		return Report{}, err
	}
	if v != nil {
		rep.Authenticated, rep.VerifierKey = true, v.Key()
	}
	return rep, nil
}

type bundleVerifier struct {
	b     Bundle
	v     *Verifier
	roots map[string]map[uint64]Hash // origin → size → root seen
	rep   Report
}

func tampered(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrTampered)
}

func (vb *bundleVerifier) verify() (Report, error) {
	m := vb.b.Manifest
	if err := vb.b.shape(); err != nil {
		return Report{}, tampered("bundle: %v", err)
	}
	if m.LeafVersion != LeafVersion {
		return Report{}, fmt.Errorf("bundle: leaf version %d, this weft reads version %d: %w", m.LeafVersion, LeafVersion, ErrUnverifiable)
	}
	if err := ValidClusterID(m.Cluster); err != nil {
		return Report{}, tampered("manifest: %v", err)
	}
	vb.rep = Report{Format: m.Format, Cluster: m.Cluster, OrderID: m.OrderID,
		Checkpoints: []CheckpointReport{}, Events: []EventReport{}, Actions: []ActionReport{},
		Claims: Claims{CreatedAt: m.CreatedAt, Query: m.Query, WeftVersion: m.WeftVersion, MaskPolicy: m.MaskPolicy}}
	actions := make([]Action, len(vb.b.Actions))
	seenAction := map[uint64]bool{}
	for i, ev := range vb.b.Actions {
		name := actionFile(i, "")
		idx := m.Actions[i].LeafIndex
		if seenAction[idx] {
			return Report{}, tampered("%s: leaf %d listed twice", name, idx)
		}
		seenAction[idx] = true
		a, err := ParseAction(ev.Leaf)
		if err != nil {
			return Report{}, tampered("%sleaf.bin: %v", name, err)
		}
		cp, err := vb.prove(name, ev.Leaf, ev.Proof, idx, ActionsOrigin(m.Cluster))
		if err != nil {
			return Report{}, err
		}
		actions[i] = a
		vb.rep.Actions = append(vb.rep.Actions, ActionReport{LeafIndex: idx, CheckpointSize: cp.Size,
			Time: Millis(a.TimeMs), Actor: a.Actor, Origin: a.Origin, Verb: a.Verb, Resource: a.Resource,
			Outcome: a.Outcome.String(), Detail: a.Detail, Targets: append([]Position{}, a.Targets...)})
	}
	seenEvent := map[Position]bool{}
	seenLeaf := map[string]bool{}
	for i, ev := range vb.b.Events {
		name := eventFile(i, "")
		me := m.Events[i]
		pos := Position{Topic: me.Topic, Partition: me.Partition, Offset: me.Offset}
		leaf, err := ParseLeaf(ev.Leaf)
		if err != nil {
			return Report{}, tampered("%sleaf.bin: %v", name, err)
		}
		if leaf.Kind != KindRecord {
			return Report{}, tampered("%sleaf.bin: a %s leaf, not a record", name, leaf.Kind)
		}
		if got := (Position{Topic: leaf.Topic, Partition: leaf.Partition, Offset: leaf.Offset}); got != pos {
			return Report{}, tampered("%sleaf.bin: the leaf is record %s, the manifest lists %s", name, got, pos)
		}
		origin := LogOrigin(m.Cluster, leaf.Topic, leaf.Partition)
		leafKey := fmt.Sprintf("%s#%d", origin, me.LeafIndex)
		if seenEvent[pos] || seenLeaf[leafKey] {
			return Report{}, tampered("%s: record %s or leaf %d listed twice", name, pos, me.LeafIndex)
		}
		seenEvent[pos], seenLeaf[leafKey] = true, true
		cp, err := vb.prove(name, ev.Leaf, ev.Proof, me.LeafIndex, origin)
		if err != nil {
			return Report{}, err
		}
		er := EventReport{Position: pos, LeafIndex: me.LeafIndex, Log: origin, CheckpointSize: cp.Size,
			LeaderEpoch: leaf.LeaderEpoch, Timestamp: Millis(leaf.TimestampMs), SourceCommitted: leaf.Source != Hash{}}
		if me.ErasedBy != nil {
			a := actions[*me.ErasedBy]
			if a.Verb != "erase" || a.Outcome != OutcomeSuccess || !a.Covers(pos) {
				return Report{}, tampered("%s: row missing, and action %d (%s, %s) is not a successful erasure of %s", name, *me.ErasedBy, a.Verb, a.Outcome, pos)
			}
			er.Status = "erased"
			er.Erasure = &ErasureReport{Action: *me.ErasedBy, Actor: a.Actor, Time: Millis(a.TimeMs), Reason: a.Detail}
		} else {
			row, err := vb.row(name, ev, leaf)
			if err != nil {
				return Report{}, err
			}
			er.Status, er.Row = "verified", row
		}
		vb.rep.Events = append(vb.rep.Events, er)
	}
	return vb.rep, nil
}

// row checks an event's row against its leaf and the manifest's order.
func (vb *bundleVerifier) row(name string, ev EventEvidence, leaf Leaf) (*RowReport, error) {
	if len(ev.Salt) != SaltSize {
		return nil, tampered("%ssalt: %d bytes, want %d", name, len(ev.Salt), SaltSize)
	}
	rec, err := ParseStoredRecord(ev.Row)
	if err != nil {
		return nil, tampered("%srow.bin: %v", name, err)
	}
	c := StoredCommitment(Salt(ev.Salt), ev.Row)
	if subtle.ConstantTimeCompare(c[:], leaf.Stored[:]) != 1 {
		return nil, tampered("%srow.bin: the row and salt do not match the leaf's stored commitment: the row was changed", name)
	}
	if order := vb.b.Manifest.OrderID; order != "" && rec.Columns["order_id"] != order {
		return nil, tampered("%srow.bin: the row is of order %q, the bundle is for %q", name, rec.Columns["order_id"], order)
	}
	r := &RowReport{Key: string(rec.Key), Value: string(rec.Value), Headers: []HeaderReport{}, Columns: rec.Columns}
	for _, h := range rec.Headers {
		r.Headers = append(r.Headers, HeaderReport{Name: h.Name, Value: string(h.Value)})
	}
	return r, nil
}

// prove checks that leafBytes is leaf index of the log origin, by the
// tlog-proof and the checkpoint it carries, and returns the checkpoint.
func (vb *bundleVerifier) prove(name string, leafBytes, proofBytes []byte, index uint64, origin string) (Checkpoint, error) {
	p, err := parseTLogProof(proofBytes)
	if err != nil {
		return Checkpoint{}, tampered("%sproof.tlog-proof: %v", name, err)
	}
	if p.Index != index {
		return Checkpoint{}, tampered("%sproof.tlog-proof: proves leaf %d, the manifest lists leaf %d", name, p.Index, index)
	}
	var sc SignedCheckpoint
	switch {
	case vb.v == nil:
		sc, err = ParseCheckpoint(p.Checkpoint, origin)
	case !bytes.Contains(p.Checkpoint, []byte("\n\n")):
		err = fmt.Errorf("checkpoint of %s is unsigned (weft had no signing key): %w", origin, ErrUnverifiable)
	default:
		sc, err = vb.v.Open(p.Checkpoint, origin)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%sproof.tlog-proof: %w", name, err)
	}
	if err := VerifyInclusion(index, sc.Size, LeafHash(leafBytes), p.Hashes, sc.Root); err != nil {
		return Checkpoint{}, tampered("%sproof.tlog-proof: the leaf is not leaf %d of %s at size %d: %v", name, index, origin, sc.Size, err)
	}
	sizes := vb.roots[origin]
	if sizes == nil {
		sizes = map[uint64]Hash{}
		vb.roots[origin] = sizes
	}
	if root, ok := sizes[sc.Size]; ok {
		if root != sc.Root {
			return Checkpoint{}, tampered("%sproof.tlog-proof: %s has two different roots at size %d: the log forked", name, origin, sc.Size)
		}
		return sc.Checkpoint, nil
	}
	sizes[sc.Size] = sc.Root
	vb.rep.Checkpoints = append(vb.rep.Checkpoints, CheckpointReport{Origin: origin, Size: sc.Size,
		Root: base64.StdEncoding.EncodeToString(sc.Root[:]), Signed: sc.Signed})
	return sc.Checkpoint, nil
}

// Summary is a one-line account of what the report proves.
func (r Report) Summary() string {
	erased := 0
	for _, e := range r.Events {
		if e.Status == "erased" {
			erased++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d events (%d erased) and %d operator actions of order %q in %d logs", len(r.Events), erased, len(r.Actions), r.OrderID, len(r.Checkpoints))
	if !r.Authenticated {
		b.WriteString(": consistent, NOT AUTHENTICATED (no verifier key)")
	}
	return b.String()
}
