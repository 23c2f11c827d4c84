package chstore

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldPath is where a value sits in an event's data, as written
// `data.customer.tier`, `data.items[0].sku` or `data["odd.key"]`: it starts
// at data, the event's data as weft stores it (a CloudEvent's data, the
// whole value of a plain JSON record), then steps into objects by key and
// into arrays by index from 0.
type FieldPath []PathStep

// PathStep is one step of a FieldPath: into an object's member Key, or,
// when IsIndex, into an array's element Index (from 0).
type PathStep struct {
	Key     string
	Index   int
	IsIndex bool
}

// maxPathIndex bounds an array index in a path.
const maxPathIndex = 1 << 20

// ParseFieldPath parses a path written as FieldPath describes: `data`,
// then any number of `.key` (a key without '.', '[', ']' or '='),
// `["key"]` (a JSON string, for any other key) or `[N]` steps.
func ParseFieldPath(s string) (FieldPath, error) {
	rest, ok := strings.CutPrefix(s, "data")
	if !ok {
		return nil, fmt.Errorf("path %q does not start at data (the event's data), e.g. data.customer.tier", s)
	}
	p := FieldPath{}
	for rest != "" {
		switch rest[0] {
		case '.':
			end := strings.IndexAny(rest[1:], ".[]=")
			if end < 0 {
				end = len(rest) - 1
			}
			key := rest[1 : 1+end]
			if key == "" {
				return nil, fmt.Errorf("path %q: empty key after '.'", s)
			}
			p = append(p, PathStep{Key: key})
			rest = rest[1+end:]
		case '[':
			step, n, err := parseBracket(rest)
			if err != nil {
				return nil, fmt.Errorf("path %q: %w", s, err)
			}
			p = append(p, step)
			rest = rest[n:]
		default:
			return nil, fmt.Errorf("path %q: want '.key', '[\"key\"]' or '[index]' after %q", s, s[:len(s)-len(rest)])
		}
	}
	return p, nil
}

// parseBracket reads one `[N]` or `["key"]` step at the start of s and
// returns it with the bytes it took.
func parseBracket(s string) (PathStep, int, error) {
	if len(s) > 1 && s[1] == '"' {
		j := 2
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		if j+1 >= len(s) || s[j+1] != ']' {
			return PathStep{}, 0, errors.New(`unterminated ["key"]`)
		}
		var key string
		if err := json.Unmarshal([]byte(s[1:j+1]), &key); err != nil {
			return PathStep{}, 0, fmt.Errorf("key %s: %w", s[1:j+1], err)
		}
		return PathStep{Key: key}, j + 2, nil
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return PathStep{}, 0, errors.New("unterminated [")
	}
	n, err := strconv.Atoi(s[1:end])
	if err != nil || n < 0 || n > maxPathIndex || strings.HasPrefix(s[1:end], "+") {
		return PathStep{}, 0, fmt.Errorf("index [%s]: want a number from 0 to %d, or a quoted key", s[1:end], maxPathIndex)
	}
	return PathStep{Index: n, IsIndex: true}, end + 1, nil
}

// String writes the path back in the form ParseFieldPath reads.
func (p FieldPath) String() string {
	var b strings.Builder
	b.WriteString("data")
	for _, st := range p {
		switch {
		case st.IsIndex:
			fmt.Fprintf(&b, "[%d]", st.Index)
		case st.Key != "" && !strings.ContainsAny(st.Key, ".[]=\""):
			b.WriteString("." + st.Key)
		default:
			q, _ := json.Marshal(st.Key)
			b.WriteString("[" + string(q) + "]")
		}
	}
	return b.String()
}

// maxValueTokens bounds the tokens of one value that are checked against
// the payload's token index; more add little selectivity.
const maxValueTokens = 8

// valueTokens returns the tokens of v that the payload's token bloom
// filter (idx_payload_tokens, migration 010) holds for every row whose
// stored payload contains v as a JSON string, number, boolean or null:
// ClickHouse's tokens are the runs of ASCII letters and digits and of
// non-ASCII bytes. It returns nil when the stored text of v may differ
// from v (the collector writes strings as encoding/json does, escaping
// control characters, '"', '\\', '<', '>', '&', U+2028, U+2029 and invalid
// UTF-8), so that no row is ever left out by the index.
func valueTokens(v string) []string {
	if !utf8.ValidString(v) || strings.ContainsAny(v, "\"\\<>&\u2028\u2029") ||
		strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 }) {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	start := -1
	for i := 0; i <= len(v); i++ {
		sep := i == len(v) || (v[i] < utf8.RuneSelf && !isAlnum(v[i]))
		switch {
		case !sep && start < 0:
			start = i
		case sep && start >= 0:
			if t := v[start:i]; !seen[t] && len(out) < maxValueTokens {
				seen[t] = true
				out = append(out, t)
			}
			start = -1
		}
	}
	return out
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// Cursor is where a page of search results ended: the position of its last
// event in the search's order (event time, then topic, partition, offset).
// Its String is the opaque token a client passes back for the next page.
type Cursor struct {
	EventTime   time.Time
	Topic       string
	Partition   int32
	Offset      int64
	OldestFirst bool
}

type cursorJSON struct {
	T int64  `json:"t"`
	K string `json:"k"`
	P int32  `json:"p"`
	O int64  `json:"o"`
	A bool   `json:"a,omitempty"`
}

// String encodes the cursor as URL-safe text.
func (c Cursor) String() string {
	b, _ := json.Marshal(cursorJSON{T: c.EventTime.UnixMilli(), K: c.Topic, P: c.Partition, O: c.Offset, A: c.OldestFirst})
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrBadCursor marks a cursor that is not one weft made.
var ErrBadCursor = errors.New("not a cursor weft made (pass the next value of a previous page as it is)")

// ParseCursor decodes what Cursor.String wrote.
func ParseCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var c cursorJSON
	if err := dec.Decode(&c); err != nil || dec.More() || c.K == "" || c.P < 0 || c.O < 0 {
		return Cursor{}, ErrBadCursor
	}
	return Cursor{EventTime: time.UnixMilli(c.T).UTC(), Topic: c.K, Partition: c.P, Offset: c.O, OldestFirst: c.A}, nil
}
