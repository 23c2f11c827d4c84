package redact_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/weft-sh/weft/collector/internal/redact"
	"github.com/weft-sh/weft/collector/internal/redact/redacttest"
)

// The helpers the decoder uses on the record's bytes (Unchanged, Number,
// AppendWhole, SensitiveKeyBytes) held to the reference masking of decoded
// JSON (redacttest). In package redact_test: redacttest imports redact.

// pair is a Redactor and the reference masking of the same rules.
type pair struct {
	r *redact.Redactor
	m *redacttest.Masker
}

func compile(rules redact.Rules) pair { return pair{redact.New(rules), redacttest.New(rules)} }

// cvvOnly masks the values under "cvv" whole, and nothing else.
var cvvOnly = redacttest.New(redact.Rules{Keys: []string{"cvv"}})

// checkByteHelpers: the helpers the decoder uses on the record's bytes
// agree with the reference, which masks decoded JSON.
func checkByteHelpers(t *testing.T, p pair, s string) {
	t.Helper()
	r := p.r
	if r.Unchanged([]byte(s)) && r.String(s) != s {
		t.Fatalf("%q: Unchanged, but String masks it to %q", s, r.String(s))
	}
	want, changed := p.m.Value(json.Number(s))
	got, ok := r.Number([]byte(s))
	if changed != ok || changed && want != got {
		t.Fatalf("%q: Value masks the number to %v (%v), Number to %q (%v)", s, want, changed, got, ok)
	}
	obj, _ := cvvOnly.Value(map[string]any{"cvv": s})
	if w, got := obj.(map[string]any)["cvv"], string(redact.AppendWhole([]byte("x"), []byte(s))); "x"+w.(string) != got {
		t.Fatalf("%q: Value masks it whole to %q, AppendWhole to %q", s, w, got[1:])
	}
	if r.SensitiveKeyBytes([]byte(s)) != r.SensitiveKey(s) || r.SensitiveKey(s) != redact.InKeys(r, s) {
		t.Fatalf("%q: SensitiveKeyBytes %v, SensitiveKey %v, the keys map %v", s,
			r.SensitiveKeyBytes([]byte(s)), r.SensitiveKey(s), redact.InKeys(r, s))
	}
}

func TestByteHelpersMatchValue(t *testing.T) {
	for _, rules := range []redact.Rules{redact.Default(), {}, {Cards: true}, {Emails: true}, {Keys: []string{"", "Straße", strings.Repeat("k", 63)}}} {
		p := compile(rules)
		for _, s := range []string{"", "4111111111111111", "4111 1111 1111 1111", "a.b@example.com", "x@y", "1764000000000",
			"4111111111111111.5", "-4111111111111111", "5500005555555559e3", "12", "card_number", "Card-Number", "ssn",
			"123456789012", "12345678901", "phone +1 555 0100 1234", strings.Repeat("4", 70), "_", "-_-", "STRASSE", "straße",
			strings.Repeat("K", 63), strings.Repeat("k_", 32), strings.Repeat("k", 64), "amount", "e-mail", "eMail"} {
			checkByteHelpers(t, p, s)
		}
	}
	// That they do not allocate on clean values: TestByteHelpersDoNotAllocate.
}

func FuzzByteHelpers(f *testing.F) {
	for _, s := range []string{"4111111111111111", "a@b.co", "1764000000000", "card_number"} {
		f.Add(s)
	}
	ps := []pair{compile(redact.Default()), compile(redact.Rules{Keys: []string{"", "Straße", "x-Y", strings.Repeat("k", 63), strings.Repeat("k", 70)}})}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range ps {
			checkByteHelpers(t, p, s)
		}
	})
}
