// Package wire is the auditor's canonical binary encoding: fixed-width
// big-endian integers, fixed-size hashes, and byte strings prefixed by
// their length as a 32-bit big-endian integer. Every value has exactly one
// encoding, so bytes that parse re-encode to themselves; a Reader rejects
// short input, over-long fields and trailing bytes, naming the field.
package wire

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Writer appends canonical fields to a byte slice.
type Writer struct{ B []byte }

// U8 appends one byte.
func (w *Writer) U8(v uint8) { w.B = append(w.B, v) }

// U32 appends a 32-bit big-endian integer.
func (w *Writer) U32(v uint32) { w.B = binary.BigEndian.AppendUint32(w.B, v) }

// U64 appends a 64-bit big-endian integer.
func (w *Writer) U64(v uint64) { w.B = binary.BigEndian.AppendUint64(w.B, v) }

// I32 appends a 32-bit two's-complement big-endian integer.
func (w *Writer) I32(v int32) { w.U32(uint32(v)) }

// I64 appends a 64-bit two's-complement big-endian integer.
func (w *Writer) I64(v int64) { w.U64(uint64(v)) }

// Hash appends 32 bytes as they are.
func (w *Writer) Hash(h [32]byte) { w.B = append(w.B, h[:]...) }

// Bytes appends a byte string: its length (u32), then the bytes.
func (w *Writer) Bytes(b []byte) {
	w.U32(uint32(len(b)))
	w.B = append(w.B, b...)
}

// String appends a text string as Bytes does.
func (w *Writer) String(s string) {
	w.U32(uint32(len(s)))
	w.B = append(w.B, s...)
}

// Reader reads canonical fields. The first problem sticks: later reads
// return zero values and Err reports the first, with the field's name.
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err is the first problem met, or nil.
func (r *Reader) Err() error { return r.err }

// Fail records a problem found by the caller (a value out of range), unless
// one is already recorded.
func (r *Reader) Fail(field, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...))
	}
}

func (r *Reader) take(field string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = fmt.Errorf("%s: truncated: needs %d bytes at byte %d, %d left", field, n, r.off, len(r.b)-r.off)
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

// U8 reads one byte.
func (r *Reader) U8(field string) uint8 {
	if b := r.take(field, 1); b != nil {
		return b[0]
	}
	return 0
}

// U32 reads a 32-bit big-endian integer.
func (r *Reader) U32(field string) uint32 {
	if b := r.take(field, 4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// U64 reads a 64-bit big-endian integer.
func (r *Reader) U64(field string) uint64 {
	if b := r.take(field, 8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// I32 reads a 32-bit two's-complement integer.
func (r *Reader) I32(field string) int32 { return int32(r.U32(field)) }

// I64 reads a 64-bit two's-complement integer.
func (r *Reader) I64(field string) int64 { return int64(r.U64(field)) }

// Hash reads 32 bytes.
func (r *Reader) Hash(field string) [32]byte {
	var h [32]byte
	copy(h[:], r.take(field, 32))
	return h
}

// Bytes reads a length-prefixed byte string of at most max bytes. The
// result is a copy, never nil.
func (r *Reader) Bytes(field string, max int) []byte {
	n := r.U32(field + " length")
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(max) {
		r.err = fmt.Errorf("%s: %d bytes, at most %d allowed", field, n, max)
		return nil
	}
	b := r.take(field, int(n))
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// String reads a length-prefixed string of at most max bytes of valid UTF-8.
func (r *Reader) String(field string, max int) string {
	b := r.Bytes(field, max)
	if r.err == nil && !utf8.Valid(b) {
		r.err = fmt.Errorf("%s: not valid UTF-8", field)
	}
	return string(b)
}

// Count reads a u32 item count of at most max, and checks that the bytes
// left could hold that many items of at least minSize bytes each, so a
// forged count cannot make the caller allocate much.
func (r *Reader) Count(field string, max, minSize int) int {
	n := r.U32(field)
	if r.err != nil {
		return 0
	}
	if uint64(n) > uint64(max) {
		r.err = fmt.Errorf("%s: %d items, at most %d allowed", field, n, max)
		return 0
	}
	if left := len(r.b) - r.off; minSize > 0 && uint64(n)*uint64(minSize) > uint64(left) {
		r.err = fmt.Errorf("%s: %d items cannot fit in the %d bytes left", field, n, left)
		return 0
	}
	return int(n)
}

// Done reports the first problem, or trailing bytes after the last field.
func (r *Reader) Done() error {
	if r.err != nil {
		return r.err
	}
	if r.off != len(r.b) {
		return fmt.Errorf("%d trailing bytes after the last field", len(r.b)-r.off)
	}
	return nil
}
