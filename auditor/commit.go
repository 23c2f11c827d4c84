package auditor

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/weft-sh/weft/auditor/internal/wire"
)

// A leaf commits to a record twice:
//
//   - C_stored, to the row ClickHouse holds (masked where the policy
//     masks), salted with 32 random bytes kept apart from the row. With
//     the salt a verifier recomputes it from the row alone; without it
//     the commitment reveals nothing. Erasing an order (GDPR) deletes its
//     rows' payloads and salts: the leaf and every proof still verify,
//     and the row's absence is explained by the erasure action.
//
//   - C_source, keyed, to the record as it was on Kafka, so that with the
//     source key `weft audit verify --kafka` can prove a stored row came
//     from that Kafka record. It is an HMAC, never a plain hash of the
//     original: a masked card number keeps its BIN and last four digits,
//     which leaves about 10^5 candidates for the rest — a plain SHA-256
//     of the original would be brute-forced at once (PCI DSS 4.0 3.5.1.1
//     asks for keyed cryptographic hashes for that reason).

// Domain tags keep each hash in this package from colliding with another
// one over the same bytes.
const (
	storedTag = "weft/audit/c-stored/v1\x00"
	sourceTag = "weft/audit/c-source/v1\x00"
	orderTag  = "weft/audit/order/v1\x00"
)

// StoredVersion opens the canonical bytes of a StoredRecord.
const StoredVersion = 1

// Limits of a stored row's canonical bytes, enforced when read.
const (
	MaxStoredField   = 64 << 20 // a key, a value, a header or column value
	MaxStoredName    = 4096     // a header or column name
	MaxStoredEntries = 10_000   // headers, and columns
)

// SaltSize is the size of a record's salt.
const SaltSize = 32

// Salt is the random value C_stored is salted with, one per record, stored
// apart from the row so that deleting it (with the payload) erases the row
// while its leaf still verifies.
type Salt [SaltSize]byte

// NewSalt returns a random salt from crypto/rand.
func NewSalt() Salt {
	var s Salt
	_, _ = rand.Read(s[:]) // never fails since Go 1.24: it crashes the program instead
	return s
}

// Header is one Kafka record header.
type Header struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
}

// StoredRecord is what ClickHouse holds for one record, beside its
// coordinates (which the leaf carries): the key, the stored (masked) value,
// the stored headers, and the columns weft derived from the record (order
// id, event type, …), each as the text the store holds.
type StoredRecord struct {
	Key   []byte
	Value []byte
	// Headers in any order: the encoding sorts them by name, then value.
	Headers []Header
	// Columns maps a column's name to its value as text, e.g. "order_id".
	Columns map[string]string
	// ColumnList is the columns as a list already in canonical order
	// (sorted by name, names distinct), for a caller that knows its
	// columns' order and builds the row without a map or a sort (the tap,
	// once per record). The bytes are the same; a record sets Columns or
	// ColumnList, not both.
	ColumnList []Column
}

// Column is one column of a stored row: its name and its value as text.
type Column struct{ Name, Value string }

// MarshalBinary returns the record's canonical bytes: the bytes C_stored
// commits to (docs/audit.md).
func (s StoredRecord) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// AppendBinary appends the record's canonical bytes to b.
func (s StoredRecord) AppendBinary(b []byte) ([]byte, error) {
	if s.Columns != nil && s.ColumnList != nil {
		return nil, errors.New("stored record: both Columns and ColumnList are set")
	}
	columns := len(s.Columns) + len(s.ColumnList)
	if len(s.Headers) > MaxStoredEntries || columns > MaxStoredEntries {
		return nil, fmt.Errorf("stored record: at most %d headers and %d columns", MaxStoredEntries, MaxStoredEntries)
	}
	for _, f := range [][]byte{s.Key, s.Value} {
		if len(f) > MaxStoredField {
			return nil, fmt.Errorf("stored record: a key or value of %d bytes, at most %d", len(f), MaxStoredField)
		}
	}
	headers := s.Headers
	if !slices.IsSortedFunc(headers, compareHeaders) {
		headers = slices.SortedFunc(slices.Values(s.Headers), compareHeaders)
	}
	for _, h := range headers {
		if len(h.Name) > MaxStoredName || len(h.Value) > MaxStoredField {
			return nil, fmt.Errorf("stored record: header %.40q is over the size limits", h.Name)
		}
	}
	w := wire.Writer{B: b}
	w.U8(StoredVersion)
	w.Bytes(s.Key)
	w.Bytes(s.Value)
	w.U32(uint32(len(headers)))
	for _, h := range headers {
		w.String(h.Name)
		w.Bytes(h.Value)
	}
	w.U32(uint32(columns))
	column := func(name, value string) error {
		if len(name) > MaxStoredName || len(value) > MaxStoredField {
			return fmt.Errorf("stored record: column %.40q is over the size limits", name)
		}
		w.String(name)
		w.String(value)
		return nil
	}
	for i, c := range s.ColumnList {
		if i > 0 && c.Name <= s.ColumnList[i-1].Name {
			return nil, fmt.Errorf("stored record: column %.40q is out of order or repeated", c.Name)
		}
		if err := column(c.Name, c.Value); err != nil {
			return nil, err
		}
	}
	if len(s.Columns) > 0 {
		for _, name := range slices.Sorted(maps.Keys(s.Columns)) {
			if err := column(name, s.Columns[name]); err != nil {
				return nil, err
			}
		}
	}
	return w.B, nil
}

func compareHeaders(a, b Header) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), bytes.Compare(a.Value, b.Value))
}

// ParseStoredRecord reads a stored record's canonical bytes strictly:
// headers sorted, column names sorted and distinct, no trailing bytes.
// Names and values are bytes, as ClickHouse's String is: no UTF-8 check.
func ParseStoredRecord(b []byte) (StoredRecord, error) {
	r := wire.NewReader(b)
	if v := r.U8("version"); r.Err() == nil && v != StoredVersion {
		return StoredRecord{}, fmt.Errorf("stored record: version %d, this weft reads version %d", v, StoredVersion)
	}
	s := StoredRecord{Key: r.Bytes("key", MaxStoredField), Value: r.Bytes("value", MaxStoredField)}
	n := r.Count("headers", MaxStoredEntries, 8)
	for i := 0; i < n && r.Err() == nil; i++ {
		h := Header{Name: string(r.Bytes("header name", MaxStoredName)), Value: r.Bytes("header value", MaxStoredField)}
		if len(s.Headers) > 0 && compareHeaders(s.Headers[len(s.Headers)-1], h) > 0 {
			r.Fail("headers", "not in canonical (sorted) order at header %d", i)
		}
		s.Headers = append(s.Headers, h)
	}
	n = r.Count("columns", MaxStoredEntries, 8)
	s.Columns = make(map[string]string, n)
	last := ""
	for i := 0; i < n && r.Err() == nil; i++ {
		name, value := string(r.Bytes("column name", MaxStoredName)), string(r.Bytes("column value", MaxStoredField))
		if i > 0 && name <= last {
			r.Fail("columns", "column %q is out of order or repeated", name)
		}
		last = name
		s.Columns[name] = value
	}
	if err := r.Done(); err != nil {
		return StoredRecord{}, fmt.Errorf("stored record: %w", err)
	}
	return s, nil
}

// Commit returns C_stored of the record with salt: StoredCommitment of its
// canonical bytes, encoded in a pooled buffer after the domain tag and
// the salt and hashed in one call (the tap's per-record path: nothing
// allocated).
func (s StoredRecord) Commit(salt Salt) (Hash, error) {
	buf := scratch.Get().(*[]byte)
	defer scratch.Put(buf)
	b := append(append((*buf)[:0], storedTag...), salt[:]...)
	b, err := s.AppendBinary(b)
	if err != nil {
		return Hash{}, err
	}
	*buf = b[:0]
	return sha256.Sum256(b), nil
}

// scratch holds encoding buffers reused across records.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// hashers holds SHA-256 states reused across records.
var hashers = sync.Pool{New: func() any { return sha256.New() }}

// StoredCommitment is C_stored: SHA-256(domain tag ‖ salt ‖ row), row being
// a StoredRecord's canonical bytes.
func StoredCommitment(salt Salt, row []byte) Hash {
	h := hashers.Get().(hash.Hash)
	defer hashers.Put(h)
	h.Reset()
	buf := scratch.Get().(*[]byte)
	defer scratch.Put(buf)
	b := append(append((*buf)[:0], storedTag...), salt[:]...)
	h.Write(b)
	h.Write(row)
	*buf = h.Sum(b[:0])
	var out Hash
	copy(out[:], *buf)
	*buf = (*buf)[:0]
	return out
}

// SourceRecord is a record as it was on Kafka: key and value (nil for
// Kafka's null), headers in the record's order.
type SourceRecord struct {
	Key     []byte
	Value   []byte
	Headers []Header
}

// appendBinary writes the record's canonical bytes: a presence byte (0 for
// null) before the key, the value and each header value, headers in record
// order.
func (s SourceRecord) appendBinary(b []byte) []byte {
	w := wire.Writer{B: b}
	w.U8(1) // version
	nullable := func(v []byte) {
		if v == nil {
			w.U8(0)
			return
		}
		w.U8(1)
		w.Bytes(v)
	}
	nullable(s.Key)
	nullable(s.Value)
	w.U32(uint32(len(s.Headers)))
	for _, h := range s.Headers {
		w.String(h.Name)
		nullable(h.Value)
	}
	return w.B
}

// MinSourceKeySize is the smallest source key accepted: 32 bytes, the
// HMAC-SHA-256 block's worth of security.
const MinSourceKeySize = 32

// SourceKey is the secret key of C_source and of order tags. A nil
// *SourceKey is valid: it commits to nothing and yields zero values, as
// weft does without a configured key.
type SourceKey struct {
	k    []byte
	macs sync.Pool // of hash.Hash: HMAC-SHA-256 under k, reset before use
}

func (k *SourceKey) mac() hash.Hash {
	if m, ok := k.macs.Get().(hash.Hash); ok {
		m.Reset()
		return m
	}
	return hmac.New(sha256.New, k.k)
}

// NewSourceKey wraps raw key bytes (at least 32).
func NewSourceKey(raw []byte) (*SourceKey, error) {
	if len(raw) < MinSourceKeySize {
		return nil, fmt.Errorf("source key: %d bytes, at least %d needed", len(raw), MinSourceKeySize)
	}
	return &SourceKey{k: slices.Clone(raw)}, nil
}

// ParseSourceKey reads a source key written as standard base64 (what
// GenerateSourceKey returns; surrounding white space is ignored).
func ParseSourceKey(text string) (*SourceKey, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, errors.New("source key: not standard base64")
	}
	return NewSourceKey(raw)
}

// GenerateSourceKey returns a new random 32-byte source key as base64.
func GenerateSourceKey() string {
	var k [MinSourceKeySize]byte
	_, _ = rand.Read(k[:])
	return base64.StdEncoding.EncodeToString(k[:])
}

// Commit returns C_source: HMAC-SHA-256(key, domain tag ‖ canonical
// record); zero for a nil key.
func (k *SourceKey) Commit(r SourceRecord) Hash {
	if k == nil {
		return Hash{}
	}
	buf := scratch.Get().(*[]byte)
	defer scratch.Put(buf)
	*buf = r.appendBinary(append((*buf)[:0], sourceTag...))
	return k.sum(buf)
}

// OrderTag returns HMAC-SHA-256(key, domain tag ‖ order id): a tag that
// marks an order's leaves without naming the order; zero for a nil key or
// an empty order id.
func (k *SourceKey) OrderTag(orderID string) Hash {
	if k == nil || orderID == "" {
		return Hash{}
	}
	buf := scratch.Get().(*[]byte)
	defer scratch.Put(buf)
	*buf = append(append((*buf)[:0], orderTag...), orderID...)
	return k.sum(buf)
}

// sum is the HMAC of *buf, summed into *buf's own storage (a pooled
// buffer: nothing allocated), which it leaves empty.
func (k *SourceKey) sum(buf *[]byte) Hash {
	m := k.mac()
	defer k.macs.Put(m)
	m.Write(*buf)
	*buf = m.Sum((*buf)[:0])
	var out Hash
	copy(out[:], *buf)
	*buf = (*buf)[:0]
	return out
}
