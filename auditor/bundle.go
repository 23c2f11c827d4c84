package auditor

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/transparency-dev/formats/proof"
)

// BundleFormat is the manifest's format line of the bundles this package
// writes and reads.
const BundleFormat = "weft-audit-bundle/v1"

// Limits a bundle must keep. ReadBundle refuses anything larger before
// reading it, so a hostile file cannot exhaust memory.
const (
	MaxBundleSize     = 512 << 20 // the whole file, and its contents uncompressed
	MaxBundleEvents   = 10_000
	MaxBundleActions  = 10_000
	maxManifestSize   = 16 << 20
	maxRowFileSize    = 128 << 20
	maxLeafFileSize   = 1 << 20 // an action with MaxTargets targets
	maxProofFileSize  = 64 << 10
	bundleIndexDigits = 4 // events/0000/…: MaxBundleEvents-1 has four digits
)

// Bundle is the offline evidence for one order: what an auditor needs to
// check, with nothing but the bundle and the public verifier key, that
// the order's events are what weft stored and logged. docs/audit.md
// describes the file.
type Bundle struct {
	Manifest Manifest
	Events   []EventEvidence // one per Manifest.Events, in its order
	Actions  []ActionEvidence
}

// Manifest is manifest.json: what the bundle is about and what it lists.
// Cluster, OrderID, Events and Actions are checked against the proven
// leaves; CreatedAt, Query, WeftVersion and MaskPolicy are what the
// exporter says, which the verify report labels as claims.
type Manifest struct {
	Format  string `json:"format"`
	Cluster string `json:"cluster"`
	OrderID string `json:"order_id"`
	// LeafVersion is the leaf encoding's version (LeafVersion).
	LeafVersion int              `json:"leaf_version"`
	CreatedAt   time.Time        `json:"created_at"`
	Query       string           `json:"query"`
	WeftVersion string           `json:"weft_version"`
	MaskPolicy  string           `json:"mask_policy"`
	Events      []ManifestEvent  `json:"events"`
	Actions     []ManifestAction `json:"actions"`
}

// ManifestEvent places one event: its record and its leaf.
type ManifestEvent struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	LeafIndex uint64 `json:"leaf_index"`
	// ErasedBy is the index in Actions of the erasure that removed the
	// event's row and salt; nil when they are in the bundle.
	ErasedBy *int `json:"erased_by,omitempty"`
}

// ManifestAction places one operator action in the actions log.
type ManifestAction struct {
	LeafIndex uint64 `json:"leaf_index"`
}

// EventEvidence is one event's files.
type EventEvidence struct {
	// Row is the StoredRecord's canonical bytes; nil when erased.
	Row []byte
	// Salt is the row's salt; nil when erased.
	Salt []byte
	// Leaf is the leaf's canonical bytes.
	Leaf []byte
	// Proof is a c2sp.org/tlog-proof@v1: the leaf's index, its inclusion
	// proof, and the signed checkpoint it reaches.
	Proof []byte
}

// ActionEvidence is one operator action's files.
type ActionEvidence struct {
	Leaf  []byte
	Proof []byte
}

// TLogProof returns a c2sp.org/tlog-proof@v1 by the formats module: a
// leaf's index, its inclusion proof, and the checkpoint note it reaches.
func TLogProof(index uint64, hashes []Hash, checkpoint SignedCheckpoint) []byte {
	return proof.TLogProof{Index: index, Hashes: hashes, Checkpoint: checkpoint.Note}.Marshal()
}

// parseTLogProof reads a tlog-proof strictly: it must be exactly what
// TLogProof writes (no extra data, canonical index and base64).
func parseTLogProof(b []byte) (proof.TLogProof, error) {
	var p proof.TLogProof
	if err := p.Unmarshal(b); err != nil {
		return p, err
	}
	if p.ExtraData != nil {
		return p, errors.New("extra data, which weft never writes")
	}
	if !bytes.Equal(p.Marshal(), b) {
		return p, errors.New("not in canonical form")
	}
	return p, nil
}

func eventFile(i int, name string) string {
	return fmt.Sprintf("events/%0*d/%s", bundleIndexDigits, i, name)
}
func actionFile(i int, name string) string {
	return fmt.Sprintf("actions/%0*d/%s", bundleIndexDigits, i, name)
}

// WriteBundle writes b as a zip file: manifest.json first, then each
// event's and action's files.
func WriteBundle(w io.Writer, b Bundle) error {
	if err := b.shape(); err != nil {
		return err
	}
	manifest, err := json.MarshalIndent(b.Manifest, "", "  ")
	if err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	put := func(name string, data []byte) error {
		f, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: b.Manifest.CreatedAt})
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		return err
	}
	if err := put("manifest.json", append(manifest, '\n')); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	for name, data := range b.files() {
		if err := put(name, data); err != nil {
			return fmt.Errorf("write bundle: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	return nil
}

// files yields every file but the manifest, in bundle order.
func (b Bundle) files() func(func(string, []byte) bool) {
	return func(yield func(string, []byte) bool) {
		for i, e := range b.Events {
			if e.Row != nil && (!yield(eventFile(i, "row.bin"), e.Row) || !yield(eventFile(i, "salt"), e.Salt)) {
				return
			}
			if !yield(eventFile(i, "leaf.bin"), e.Leaf) || !yield(eventFile(i, "proof.tlog-proof"), e.Proof) {
				return
			}
		}
		for i, a := range b.Actions {
			if !yield(actionFile(i, "leaf.bin"), a.Leaf) || !yield(actionFile(i, "proof.tlog-proof"), a.Proof) {
				return
			}
		}
	}
}

// shape checks that the evidence matches the manifest's lists.
func (b Bundle) shape() error {
	m := b.Manifest
	switch {
	case m.Format != BundleFormat:
		return fmt.Errorf("bundle format %q, this weft reads %q", m.Format, BundleFormat)
	case len(m.Events) != len(b.Events) || len(m.Actions) != len(b.Actions):
		return fmt.Errorf("manifest lists %d events and %d actions, the bundle has %d and %d", len(m.Events), len(m.Actions), len(b.Events), len(b.Actions))
	case len(b.Events) > MaxBundleEvents || len(b.Actions) > MaxBundleActions:
		return fmt.Errorf("bundle of %d events and %d actions: at most %d and %d", len(b.Events), len(b.Actions), MaxBundleEvents, MaxBundleActions)
	}
	for i, e := range b.Events {
		erased := m.Events[i].ErasedBy != nil
		switch {
		case (e.Row == nil) != (e.Salt == nil):
			return fmt.Errorf("event %d: a row without its salt, or a salt without its row", i)
		case erased && e.Row != nil:
			return fmt.Errorf("event %d: erased, yet its row is present", i)
		case !erased && e.Row == nil:
			return fmt.Errorf("event %d: its row and salt are missing and no erasure is named", i)
		case erased && (*m.Events[i].ErasedBy < 0 || *m.Events[i].ErasedBy >= len(b.Actions)):
			return fmt.Errorf("event %d: erased by action %d, not in the bundle", i, *m.Events[i].ErasedBy)
		case e.Leaf == nil || e.Proof == nil:
			return fmt.Errorf("event %d: leaf or proof missing", i)
		}
	}
	for i, a := range b.Actions {
		if a.Leaf == nil || a.Proof == nil {
			return fmt.Errorf("action %d: leaf or proof missing", i)
		}
	}
	return nil
}

// ReadBundle reads a bundle of size bytes from r. It is strict and
// bounded: the zip must hold exactly the files the manifest calls for,
// each within its size limit, stored or deflated, and manifest.json must
// have no unknown field. It never panics; every error says what is wrong
// and wraps ErrTampered, as a file weft wrote never fails it.
func ReadBundle(r io.ReaderAt, size int64) (Bundle, error) {
	b, err := readBundle(r, size)
	if err != nil {
		return Bundle{}, fmt.Errorf("bundle: %w: %w", err, ErrTampered)
	}
	return b, nil
}

func readBundle(r io.ReaderAt, size int64) (Bundle, error) {
	if size > MaxBundleSize {
		return Bundle{}, fmt.Errorf("%d bytes, at most %d", size, MaxBundleSize)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return Bundle{}, err
	}
	if len(zr.File) > 1+4*MaxBundleEvents+2*MaxBundleActions {
		return Bundle{}, fmt.Errorf("%d files", len(zr.File))
	}
	byName := map[string]*zip.File{}
	for _, f := range zr.File {
		if _, dup := byName[f.Name]; dup {
			return Bundle{}, fmt.Errorf("%s: twice", f.Name)
		}
		if f.Method != zip.Store && f.Method != zip.Deflate {
			return Bundle{}, fmt.Errorf("%s: compression method %d, want stored or deflated", f.Name, f.Method)
		}
		if !f.Mode().IsRegular() {
			return Bundle{}, fmt.Errorf("%s: not a regular file", f.Name)
		}
		byName[f.Name] = f
	}
	var total int64
	read := func(name string, limit int64) ([]byte, error) {
		f, ok := byName[name]
		if !ok {
			return nil, nil
		}
		delete(byName, name)
		if f.UncompressedSize64 > uint64(limit) || total+int64(f.UncompressedSize64) > MaxBundleSize {
			return nil, fmt.Errorf("%s: %d bytes, at most %d", name, f.UncompressedSize64, limit)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		defer rc.Close()
		data, err := io.ReadAll(io.LimitReader(rc, limit+1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if int64(len(data)) > limit {
			return nil, fmt.Errorf("%s: over %d bytes", name, limit)
		}
		total += int64(len(data))
		return data, nil
	}
	manifest, err := read("manifest.json", maxManifestSize)
	if err != nil {
		return Bundle{}, err
	}
	if manifest == nil {
		return Bundle{}, errors.New("no manifest.json")
	}
	var b Bundle
	if err := decodeStrict(manifest, &b.Manifest); err != nil {
		return Bundle{}, fmt.Errorf("manifest.json: %w", err)
	}
	m := b.Manifest
	if m.Format != BundleFormat {
		return Bundle{}, fmt.Errorf("manifest.json: format %q, this weft reads %q", m.Format, BundleFormat)
	}
	if len(m.Events) > MaxBundleEvents || len(m.Actions) > MaxBundleActions {
		return Bundle{}, fmt.Errorf("manifest.json: %d events and %d actions, at most %d and %d", len(m.Events), len(m.Actions), MaxBundleEvents, MaxBundleActions)
	}
	for i := range m.Events {
		var e EventEvidence
		for _, f := range []struct {
			name  string
			limit int64
			into  *[]byte
		}{{"row.bin", maxRowFileSize, &e.Row}, {"salt", SaltSize, &e.Salt}, {"leaf.bin", maxLeafFileSize, &e.Leaf}, {"proof.tlog-proof", maxProofFileSize, &e.Proof}} {
			if *f.into, err = read(eventFile(i, f.name), f.limit); err != nil {
				return Bundle{}, err
			}
		}
		b.Events = append(b.Events, e)
	}
	for i := range m.Actions {
		var a ActionEvidence
		if a.Leaf, err = read(actionFile(i, "leaf.bin"), maxLeafFileSize); err != nil {
			return Bundle{}, err
		}
		if a.Proof, err = read(actionFile(i, "proof.tlog-proof"), maxProofFileSize); err != nil {
			return Bundle{}, err
		}
		b.Actions = append(b.Actions, a)
	}
	if len(byName) > 0 {
		names := slices.Sorted(maps.Keys(byName))
		return Bundle{}, fmt.Errorf("files the manifest does not list: %q", names)
	}
	if err := b.shape(); err != nil {
		return Bundle{}, err
	}
	return b, nil
}

// decodeStrict decodes one JSON value with no unknown fields and nothing
// after it.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the manifest's object")
	}
	return nil
}
