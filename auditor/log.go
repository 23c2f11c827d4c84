package auditor

import (
	"crypto/sha256"
	"fmt"
	"math/bits"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/weft-sh/weft/auditor/internal/wire"
)

// rangeFactory builds RFC 6962 compact ranges: the whole state of an
// append-only tree is the roots of its perfect subtrees, one per set bit
// of its size (docs/audit.md, "Log state").
var rangeFactory = &compact.RangeFactory{Hash: hashChildren}

// hashChildren is RFC 6962's interior node hash, SHA-256(0x01 ‖ left ‖
// right), as rfc6962.DefaultHasher.HashChildren computes it, with one
// allocation (the hash the range keeps) instead of three.
func hashChildren(left, right []byte) []byte {
	if len(left) != sha256.Size || len(right) != sha256.Size {
		return rfc6962.DefaultHasher.HashChildren(left, right) // never, in a log of SHA-256 hashes
	}
	var b [1 + 2*sha256.Size]byte
	b[0] = rfc6962.RFC6962NodeHashPrefix
	copy(b[1:], left)
	copy(b[1+sha256.Size:], right)
	h := sha256.Sum256(b[:])
	return h[:]
}

// LogStateVersion opens a Log's serialised state.
const LogStateVersion = 1

// Log is the state of one append-only Merkle log (RFC 6962): its size and
// the compact range that yields its root, at most 64 hashes whatever its
// size. A Log is not safe for concurrent use; Clone it to stage appends
// that may be abandoned (an insert that failed).
type Log struct {
	r *compact.Range
}

// NewLog returns an empty log.
func NewLog() *Log { return &Log{r: rangeFactory.NewEmptyRange(0)} }

// Append adds a leaf hash (LeafHash of the leaf's bytes) and returns its
// index.
func (l *Log) Append(leafHash Hash) (uint64, error) {
	index := l.r.End()
	h := leafHash // the range keeps the slice: give it its own copy
	if err := l.r.Append(h[:], nil); err != nil {
		return 0, fmt.Errorf("log append: %w", err)
	}
	return index, nil
}

// Size is the number of leaves.
func (l *Log) Size() uint64 { return l.r.End() }

// Root is the RFC 6962 root hash; for an empty log, SHA-256 of nothing.
func (l *Log) Root() Hash {
	root, err := l.r.GetRootHash(nil)
	if err != nil || root == nil { // begin is always 0, so only the empty range
		return Hash(rfc6962.DefaultHasher.EmptyRoot())
	}
	return Hash(root)
}

// Checkpoint returns the log's checkpoint under origin, to be signed.
func (l *Log) Checkpoint(origin string) Checkpoint {
	return Checkpoint{Origin: origin, Size: l.Size(), Root: l.Root()}
}

// Clone returns an independent copy.
func (l *Log) Clone() *Log {
	hashes := make([][]byte, len(l.r.Hashes()))
	for i, h := range l.r.Hashes() {
		hashes[i] = append([]byte(nil), h...)
	}
	r, _ := rangeFactory.NewRange(0, l.r.End(), hashes) // a valid range's own hashes
	return &Log{r: r}
}

// Equal reports whether two logs have the same size and hashes.
func (l *Log) Equal(o *Log) bool { return l.r.Equal(o.r) }

// MarshalBinary serialises the state: a version byte, the size (u64), and
// the compact range's hashes, one per set bit of the size, left to right.
// 9 + 32·popcount(size) bytes: at most 2,057.
func (l *Log) MarshalBinary() ([]byte, error) {
	w := wire.Writer{B: make([]byte, 0, 9+32*len(l.r.Hashes()))}
	w.U8(LogStateVersion)
	w.U64(l.r.End())
	for _, h := range l.r.Hashes() {
		w.Hash(Hash(h))
	}
	return w.B, nil
}

// ParseLogState reads what MarshalBinary wrote.
func ParseLogState(b []byte) (*Log, error) {
	r := wire.NewReader(b)
	if v := r.U8("version"); r.Err() == nil && v != LogStateVersion {
		return nil, fmt.Errorf("log state: version %d, this weft reads version %d", v, LogStateVersion)
	}
	size := r.U64("size")
	hashes := make([][]byte, 0, bits.OnesCount64(size))
	for range bits.OnesCount64(size) {
		h := r.Hash("hash")
		hashes = append(hashes, h[:])
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("log state: %w", err)
	}
	cr, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return nil, fmt.Errorf("log state: %w", err)
	}
	return &Log{r: cr}, nil
}
