// Package redacttest is the reference the decoder's masking is tested
// against: redact's rules applied to a decoded JSON value (map[string]any,
// []any, string, json.Number), as the decoder applied them before it
// masked the record's bytes as it writes them (collector/payload.go). Only
// tests import it.
package redacttest

import (
	"maps"
	"slices"
	"strings"

	"github.com/weft-sh/weft/collector/internal/redact"
)

// Masker masks decoded JSON values by a set of rules.
type Masker struct {
	red *redact.Redactor
	// cards masks card numbers only (nil when the rules do not): what a
	// number's text goes through.
	cards *redact.Redactor
}

// New compiles rules.
func New(rules redact.Rules) *Masker {
	m := &Masker{red: redact.New(rules)}
	if rules.Cards {
		m.cards = redact.New(redact.Rules{Cards: true})
	}
	return m
}

// Value masks v in place where it can (maps and slices) and returns the
// masked value. It reports whether anything was changed. Object keys are
// masked as redact.Redactor.Keys masks them; the values of sensitive keys
// are masked whole (null stays null).
func (m *Masker) Value(v any) (any, bool) {
	switch t := v.(type) {
	case map[string]any:
		changed := m.maskKeys(t)
		for k, child := range t {
			if m.red.SensitiveKey(k) {
				if child != nil {
					t[k] = maskWhole(child)
					changed = true
				}
				continue
			}
			nv, c := m.Value(child)
			if c {
				t[k] = nv
				changed = true
			}
		}
		return t, changed
	case []any:
		changed := false
		for i, child := range t {
			nv, c := m.Value(child)
			if c {
				t[i] = nv
				changed = true
			}
		}
		return t, changed
	case string:
		s := m.red.String(t)
		return s, s != t
	default:
		// json.Number and others: a card number may come as a number.
		if n, ok := v.(interface{ String() string }); ok && m.cards != nil {
			s := n.String()
			if masked := m.cards.String(s); masked != s {
				return masked, true
			}
		}
		return v, false
	}
}

// maskKeys renames the keys of obj that redact.Redactor.Keys masks, in
// place, reporting whether any was. The caller then masks the values under
// the new names.
func (m *Masker) maskKeys(obj map[string]any) bool {
	needs := false
	for k := range obj {
		if m.red.String(k) != k {
			needs = true
			break
		}
	}
	if !needs {
		return false
	}
	keys := slices.Sorted(maps.Keys(obj))
	vals := make([]any, len(keys))
	for i, k := range keys {
		vals[i] = obj[k]
		delete(obj, k)
	}
	for i, name := range m.red.Keys(keys) {
		obj[name] = vals[i]
	}
	return true
}

// maskWhole is what a value under a sensitive key becomes: a string
// holding at least twelve digits keeps its last four, anything else is
// redact.Masked.
func maskWhole(v any) any {
	if s, ok := v.(string); ok {
		digits := onlyDigits(s)
		if len(digits) >= 12 {
			return strings.Repeat("*", len(digits)-4) + digits[len(digits)-4:]
		}
	}
	return redact.Masked
}

func onlyDigits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
