package redact

import "strings"

// Opaque masks text that is not a JSON document weft could decode — a
// quarantined record's value, a record key, a header value: broken JSON,
// form data, a log line. Every rule applies: the value after a sensitive
// key (`"cvv": "123"`, `cvv=123`, `'card': {…}`) becomes Masked, then card
// numbers and e-mail addresses are masked wherever they are (String).
//
// It errs on the side of masking: a value is taken to run to the next
// delimiter (, ; & newline or a closing bracket) unless it is quoted, a
// quoted one runs to its closing quote or the end of the text, and an
// object or array runs to its matching bracket or the end of the text.
func (r *Redactor) Opaque(s string) string {
	if len(r.keys) > 0 && strings.ContainsAny(s, ":=") { // no separator, no keyed value
		s = r.maskKeyed(s)
	}
	return r.String(s)
}

// maskKeyed replaces the value after every sensitive key in s with Masked.
func (r *Redactor) maskKeyed(s string) string {
	var out []byte // nil until something is masked
	last := 0      // s[last:] is not copied to out yet
	for i := 0; i < len(s); {
		if !keyByte(s[i]) {
			i++
			continue
		}
		start := i
		for i < len(s) && keyByte(s[i]) {
			i++
		}
		if !r.SensitiveKey(s[start:i]) {
			continue
		}
		from, to, ok := valueAfter(s, i)
		if !ok {
			continue
		}
		out = append(out, s[last:from]...)
		out = append(out, Masked...)
		last, i = to, to
	}
	if out == nil {
		return s
	}
	return string(append(out, s[last:]...))
}

// keyByte reports bytes a key is made of.
func keyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// valueAfter finds the value that follows a key ending at i: an optional
// closing quote, spaces, ':' or '=', spaces, then the value. It returns the
// span to replace — inside the quotes of a quoted value — and false when no
// separator follows the key.
func valueAfter(s string, i int) (from, to int, ok bool) {
	if i < len(s) && (s[i] == '"' || s[i] == '\'') {
		i++
	}
	i = skipSpace(s, i)
	if i >= len(s) || s[i] != ':' && s[i] != '=' {
		return 0, 0, false
	}
	i = skipSpace(s, i+1)
	if i >= len(s) {
		return i, i, true
	}
	switch c := s[i]; c {
	case '"', '\'':
		j := i + 1
		for j < len(s) && s[j] != c {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		return i + 1, min(j, len(s)), true
	case '{', '[':
		return i, closing(s, i), true
	}
	j := i
	for j < len(s) && !delimiter(s[j]) {
		j++
	}
	return i, j, true
}

// closing returns the index after the bracket that closes the one at i,
// skipping quoted text, or len(s) when it is never closed.
func closing(s string, i int) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return j + 1
			}
		case '"', '\'':
			q := s[j]
			for j++; j < len(s) && s[j] != q; j++ {
				if s[j] == '\\' {
					j++
				}
			}
		}
	}
	return len(s)
}

func delimiter(c byte) bool {
	switch c {
	case ',', ';', '&', '\n', '\r', '}', ']', ')':
		return true
	}
	return false
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}
