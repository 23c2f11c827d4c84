// Package jsondoc indexes a JSON document in one pass, accepting exactly
// what encoding/json accepts, so that the decoder can look fields up and
// re-encode the document without building map[string]any.
//
// A Doc is a flat list of the document's values in source order; strings
// are kept as slices of the source (decoded only when they hold an escape
// or invalid UTF-8) and numbers as their literal text. A Doc is reused from
// one Parse to the next and is not safe for concurrent use.
package jsondoc

import (
	"encoding/binary"
	"errors"
	"math"
	"unicode/utf8"
)

// ErrInvalid is returned for a document encoding/json rejects. It says no
// more: callers that need a reason ask encoding/json for its own.
var ErrInvalid = errors.New("jsondoc: invalid JSON")

// maxDepth is encoding/json's limit on nested arrays and objects.
const maxDepth = 10000

// Kind is the JSON type of a value.
type Kind uint8

// The kinds of JSON values.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

// String names the kind as the quarantine reasons do ("a JSON boolean").
func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "boolean"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	default:
		return "object"
	}
}

// Value is a value of the last parsed document. The root is Value 0; None
// is no value.
type Value int32

// None is returned where there is no value.
const None Value = -1

type node struct {
	// start, end: a string's decoded text (in src, or in text when
	// decoded), any other value's literal text in src.
	start, end int32
	// keyStart, keyEnd: the member's decoded key, for a value in an object.
	keyStart, keyEnd int32
	next             Value // the next value of the same array or object
	n                int32 // an array's elements, an object's members
	kind             Kind
	flags            uint8 // decoded | plain, for the value; << keyShift for the key
}

const (
	decoded  = 1 << iota // the text is in Doc.text (it held escapes or invalid UTF-8)
	plain                // the text is ASCII that encoding/json writes as it is
	keyShift = 2
)

// Doc is a parsed JSON document. The zero value is ready to use.
type Doc struct {
	src   []byte
	nodes []node
	text  []byte // decoded strings and keys: the ones with escapes or invalid UTF-8
}

// Parse indexes src, which must stay unchanged while the Doc is used. It
// returns ErrInvalid when encoding/json would reject src, and then the Doc
// holds nothing.
func (d *Doc) Parse(src []byte) error {
	d.src, d.nodes, d.text = src, d.nodes[:0], d.text[:0]
	if len(src) > math.MaxInt32 {
		d.Reset()
		return ErrInvalid
	}
	i, err := d.value(skipWS(src, 0), 0)
	if err == nil && skipWS(src, i) != len(src) {
		err = ErrInvalid
	}
	if err != nil {
		d.Reset()
	}
	return err
}

// Reset forgets the document (the Doc keeps its memory for the next Parse)
// and drops its buffers if they grew past maxKeep bytes.
func (d *Doc) Reset() {
	const maxKeep = 1 << 20
	d.src, d.nodes, d.text = nil, d.nodes[:0], d.text[:0]
	if cap(d.nodes)*int(nodeSize) > maxKeep {
		d.nodes = nil
	}
	if cap(d.text) > maxKeep {
		d.text = nil
	}
}

const nodeSize = 28

// Kind returns v's JSON type.
func (d *Doc) Kind(v Value) Kind { return d.nodes[v].kind }

// Raw returns v's literal text as it is in the source: a number's digits,
// true, false or null. For a string it returns the decoded text, as Text.
func (d *Doc) Raw(v Value) []byte {
	n := &d.nodes[v]
	if n.flags&decoded != 0 {
		return d.text[n.start:n.end]
	}
	return d.src[n.start:n.end]
}

// Text returns a string's decoded text, as encoding/json decodes it
// (invalid UTF-8 and lone surrogates become U+FFFD). The slice is the
// Doc's: copy it to keep it past the next Parse.
func (d *Doc) Text(v Value) []byte { return d.Raw(v) }

// Key returns the decoded key of v, a member of an object.
func (d *Doc) Key(v Value) []byte {
	n := &d.nodes[v]
	if n.flags&(decoded<<keyShift) != 0 {
		return d.text[n.keyStart:n.keyEnd]
	}
	return d.src[n.keyStart:n.keyEnd]
}

// AppendText appends the string v as encoding/json writes it: as it is in
// the source when that needs no escaping, the common case.
func (d *Doc) AppendText(dst []byte, v Value) []byte {
	if d.nodes[v].flags&plain != 0 {
		dst = append(dst, '"')
		dst = append(dst, d.Text(v)...)
		return append(dst, '"')
	}
	return AppendString(dst, d.Text(v))
}

// AppendKey appends the key of v, a member of an object, as encoding/json
// writes it.
func (d *Doc) AppendKey(dst []byte, v Value) []byte {
	if d.nodes[v].flags&(plain<<keyShift) != 0 {
		dst = append(dst, '"')
		dst = append(dst, d.Key(v)...)
		return append(dst, '"')
	}
	return AppendString(dst, d.Key(v))
}

// Len returns the number of elements of an array or members of an object
// (a repeated key counted each time).
func (d *Doc) Len(v Value) int { return int(d.nodes[v].n) }

// First returns the first element or member of v, or None.
func (d *Doc) First(v Value) Value {
	if d.nodes[v].n == 0 {
		return None
	}
	return v + 1
}

// Next returns the element or member after v in its array or object, or None.
func (d *Doc) Next(v Value) Value { return d.nodes[v].next }

// Member returns the value of the member named key of obj, or None. When
// the key is repeated the last one wins, as in encoding/json.
func (d *Doc) Member(obj Value, key string) Value {
	found := None
	for c := d.First(obj); c != None; c = d.Next(c) {
		if string(d.Key(c)) == key {
			found = c
		}
	}
	return found
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// value parses the value at src[i:], appends its node (and its children's),
// and returns the index after it.
func (d *Doc) value(i, depth int) (int, error) {
	src := d.src
	if i >= len(src) {
		return i, ErrInvalid
	}
	v := Value(len(d.nodes))
	d.nodes = append(d.nodes, node{next: None})
	switch c := src[i]; c {
	case '{':
		return d.object(v, i, depth+1)
	case '[':
		return d.array(v, i, depth+1)
	case '"':
		start, end, flags, j, err := d.str(i)
		if err != nil {
			return j, err
		}
		n := &d.nodes[v]
		n.kind, n.start, n.end, n.flags = String, start, end, flags
		return j, nil
	case 't', 'f', 'n':
		lit, kind := "null", Null
		switch c {
		case 't':
			lit, kind = "true", Bool
		case 'f':
			lit, kind = "false", Bool
		}
		if len(src)-i < len(lit) || string(src[i:i+len(lit)]) != lit {
			return i, ErrInvalid
		}
		n := &d.nodes[v]
		n.kind, n.start, n.end = kind, int32(i), int32(i+len(lit))
		return i + len(lit), nil
	default:
		j, err := number(src, i)
		if err != nil {
			return j, err
		}
		n := &d.nodes[v]
		n.kind, n.start, n.end = Number, int32(i), int32(j)
		return j, nil
	}
}

func (d *Doc) object(v Value, i, depth int) (int, error) {
	if depth > maxDepth {
		return i, ErrInvalid
	}
	src := d.src
	d.nodes[v].kind, d.nodes[v].start = Object, int32(i)
	i = skipWS(src, i+1)
	if i < len(src) && src[i] == '}' {
		d.nodes[v].end = int32(i + 1)
		return i + 1, nil
	}
	prev, n := None, int32(0)
	for {
		if i >= len(src) || src[i] != '"' {
			return i, ErrInvalid
		}
		ks, ke, kf, j, err := d.str(i)
		if err != nil {
			return j, err
		}
		i = skipWS(src, j)
		if i >= len(src) || src[i] != ':' {
			return i, ErrInvalid
		}
		c := Value(len(d.nodes))
		if i, err = d.value(skipWS(src, i+1), depth); err != nil {
			return i, err
		}
		cn := &d.nodes[c]
		cn.keyStart, cn.keyEnd, cn.flags = ks, ke, cn.flags|kf<<keyShift
		if prev != None {
			d.nodes[prev].next = c
		}
		prev = c
		n++
		i = skipWS(src, i)
		if i >= len(src) {
			return i, ErrInvalid
		}
		switch src[i] {
		case ',':
			i = skipWS(src, i+1)
		case '}':
			d.nodes[v].end, d.nodes[v].n = int32(i+1), n
			return i + 1, nil
		default:
			return i, ErrInvalid
		}
	}
}

func (d *Doc) array(v Value, i, depth int) (int, error) {
	if depth > maxDepth {
		return i, ErrInvalid
	}
	src := d.src
	d.nodes[v].kind, d.nodes[v].start = Array, int32(i)
	i = skipWS(src, i+1)
	if i < len(src) && src[i] == ']' {
		d.nodes[v].end = int32(i + 1)
		return i + 1, nil
	}
	prev, n := None, int32(0)
	for {
		c := Value(len(d.nodes))
		var err error
		if i, err = d.value(i, depth); err != nil {
			return i, err
		}
		if prev != None {
			d.nodes[prev].next = c
		}
		prev = c
		n++
		i = skipWS(src, i)
		if i >= len(src) {
			return i, ErrInvalid
		}
		switch src[i] {
		case ',':
			i = skipWS(src, i+1)
		case ']':
			d.nodes[v].end, d.nodes[v].n = int32(i+1), n
			return i + 1, nil
		default:
			return i, ErrInvalid
		}
	}
}

// Byte classes inside a string.
const (
	ordinary = iota
	quote
	backslash
	control // not allowed unescaped
	high    // part of a multi-byte (or invalid) UTF-8 sequence
	html    // escaped by encoding/json: <, >, &
)

var strClass = func() (t [256]uint8) {
	for c := 0; c < 0x20; c++ {
		t[c] = control
	}
	t['"'], t['\\'] = quote, backslash
	t['<'], t['>'], t['&'] = html, html, html
	for c := 0x80; c < 0x100; c++ {
		t[c] = high
	}
	return t
}()

// str checks the string starting with the quote at src[i] and returns its
// decoded text's bounds (in src, or in d.text when decoded), its flags and
// the index after its closing quote.
func (d *Doc) str(i int) (start, end int32, flags uint8, next int, err error) {
	src := d.src
	j := i + 1
	escaped, nonASCII, special := false, false, false
	for {
		for j+8 <= len(src) && ordinary8(binary.LittleEndian.Uint64(src[j:])) {
			j += 8
		}
		for j < len(src) && strClass[src[j]] == ordinary {
			j++
		}
		if j >= len(src) {
			return 0, 0, 0, j, ErrInvalid
		}
		switch strClass[src[j]] {
		case quote:
			body := src[i+1 : j]
			if escaped || nonASCII && !utf8.Valid(body) {
				s := len(d.text)
				d.text = appendUnquoted(d.text, body)
				return int32(s), int32(len(d.text)), decoded, j + 1, nil
			}
			if !nonASCII && !special {
				flags = plain
			}
			return int32(i + 1), int32(j), flags, j + 1, nil
		case html:
			special = true
			j++
		case backslash:
			escaped = true
			if j+1 >= len(src) {
				return 0, 0, 0, j, ErrInvalid
			}
			switch src[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if hex4(src, j+2) < 0 {
					return 0, 0, 0, j, ErrInvalid
				}
				j += 6
			default:
				return 0, 0, 0, j, ErrInvalid
			}
		case control:
			return 0, 0, 0, j, ErrInvalid
		case high:
			nonASCII = true
			j++
		}
	}
}

const (
	lsb = 0x0101010101010101 // the least significant bit of each byte
	msb = 0x8080808080808080 // the most significant bit of each byte
)

// ordinary8 reports whether the eight bytes of x are all ordinary inside a
// string, eight at a time: long text is mostly ordinary bytes.
func ordinary8(x uint64) bool {
	zero := func(y uint64) uint64 { return (y - lsb) &^ y & msb } // some byte of y is 0
	high := x & msb                                               // a byte ≥ 0x80
	control := (x - 0x20*lsb) &^ x & msb                          // a byte < 0x20
	backslash := zero(x ^ '\\'*lsb)
	angle := zero(x | 0x02*lsb ^ '>'*lsb)      // '<' (0x3c) or '>' (0x3e)
	quoteOrAmp := zero(x | 0x04*lsb ^ '&'*lsb) // '"' (0x22) or '&' (0x26)
	return high|control|backslash|angle|quoteOrAmp == 0
}

// hex4 returns the value of the four hex digits at b[i:], or -1.
func hex4(b []byte, i int) rune {
	if len(b)-i < 4 {
		return -1
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// number checks the number starting at src[i] and returns the index after it.
func number(src []byte, i int) (int, error) {
	digits := func(j int) int {
		for j < len(src) && '0' <= src[j] && src[j] <= '9' {
			j++
		}
		return j
	}
	j := i
	if src[j] == '-' {
		j++
	}
	switch {
	case j >= len(src) || src[j] < '0' || src[j] > '9':
		return j, ErrInvalid
	case src[j] == '0':
		j++
	default:
		j = digits(j)
	}
	if j < len(src) && src[j] == '.' {
		k := digits(j + 1)
		if k == j+1 {
			return k, ErrInvalid
		}
		j = k
	}
	if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
		j++
		if j < len(src) && (src[j] == '+' || src[j] == '-') {
			j++
		}
		k := digits(j)
		if k == j {
			return k, ErrInvalid
		}
		j = k
	}
	return j, nil
}
