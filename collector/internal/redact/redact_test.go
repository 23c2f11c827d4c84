package redact

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLuhn(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"4111111111111111", true},
		{"4111111111111112", false},
		{"5500005555555559", true},
		{"378282246310005", true},
		{"1234567812345678", false},
	} {
		t.Run(tc.in, func(t *testing.T) { assert.Equal(t, tc.want, Luhn(tc.in)) })
	}
}

// A card inside a longer run of digit groups is masked, and only the card:
// the pattern's longest match fails the Luhn check as a whole.
func TestCardWithinRun(t *testing.T) {
	r := New(Default())
	for _, tc := range []struct{ in, want string }{
		{"ref 4111111111111111-01", "ref ************1111-01"},
		{"01-4111111111111111 x", "01-************1111 x"},
		{"card 4111 1111 1111 1111-7", "card ************1111-7"},
		{"00-0af7651916cd43dd8448eb211c80319c-2053553342758463-01", "00-0af7651916cd43dd8448eb211c80319c-************8463-01"},
		{"4111111111111111 2222", "************1111 2222"},
		{"1234-5678-9012-3456", "1234-5678-9012-3456"}, // no card in it
		{"order 2026-11-24 12345678901234", "order 2026-11-24 12345678901234"},
	} {
		assert.Equal(t, tc.want, r.String(tc.in), tc.in)
	}
}

// SensitiveKey's stack fast path normalizes exactly as normKey does: every
// spelling of a key compares equal, non-ASCII and long keys included.
func TestSensitiveKeySpellings(t *testing.T) {
	r := New(Rules{Keys: []string{"card_number", "cvv", "Straße", strings.Repeat("k", 70)}})
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"card_number", true},
		{"cardNumber", true},
		{"Card-Number", true},
		{"CARD__NUMBER", true},
		{"card_numbers", false},
		{"CVV", true},
		{"c-v-v", true},
		{"straße", true},
		{"STRASSE", false},
		{strings.Repeat("K", 70), true},
		{strings.Repeat("k", 69), false},
		{"", false},
		{"traceparent", false},
	} {
		t.Run(tc.key, func(t *testing.T) {
			assert.Equal(t, tc.want, r.SensitiveKey(tc.key))
			assert.Equal(t, r.keys[normKey(tc.key)], r.SensitiveKey(tc.key), "same as normKey")
		})
	}
	assert.Zero(t, testing.AllocsPerRun(100, func() { r.SensitiveKey("Idempotency-Key") }), "ASCII keys do not allocate")
}

// The helpers the decoder runs on every string and key of every record do
// not allocate on clean values. (What they return: bytehelpers_test.go.)
func TestByteHelpersDoNotAllocate(t *testing.T) {
	r := New(Default())
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		r.Unchanged([]byte("weekend returned when please desk"))
		r.SensitiveKeyBytes([]byte("Idempotency-Key"))
		r.Number([]byte("12.5"))
	}), "clean values do not allocate")
}

// hasDigitRunRef is hasDigitRun as it was first written: the reference.
func hasDigitRunRef(s string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			run++
			if run >= n {
				return true
			}
		case (c == ' ' || c == '-') && run > 0:
		default:
			run = 0
		}
	}
	return false
}

func FuzzHasDigitRun(f *testing.F) {
	for _, s := range []string{"", "4111 1111 1111 1111", "a1234567890123", " -1234567890123", "123456789012x3", "12--34  5678901234"} {
		f.Add(s, uint8(13))
	}
	f.Fuzz(func(t *testing.T, s string, n uint8) {
		if n == 0 {
			return
		}
		if got, want := hasDigitRun(s, int(n)), hasDigitRunRef(s, int(n)); got != want {
			t.Fatalf("hasDigitRun(%q, %d) = %v, want %v", s, n, got, want)
		}
		if hasDigitRun([]byte(s), int(n)) != hasDigitRun(s, int(n)) {
			t.Fatalf("%q: []byte and string disagree", s)
		}
	})
}

func TestDigit8(t *testing.T) {
	for pos := 0; pos < 8; pos++ {
		for c := 0; c < 256; c++ {
			for _, fill := range []byte{'a', '/', ':', 0xff, 0} {
				b := []byte(strings.Repeat(string(rune(0)), 8))
				for i := range b {
					b[i] = fill
				}
				b[pos] = byte(c)
				want := c >= '0' && c <= '9'
				if got := digit8(load64(b, 0)); got != want {
					t.Fatalf("%q: digit8 %v, want %v", b, got, want)
				}
			}
		}
	}
}

func TestRunBytes8(t *testing.T) {
	good := func(c byte) bool { return c >= '0' && c <= '9' || c == ' ' || c == '-' }
	for pos := 0; pos < 8; pos++ {
		for c := 0; c < 256; c++ {
			for _, fill := range []byte{'0', '9', ' ', '-', 'a', 0xff} {
				b := make([]byte, 8)
				for i := range b {
					b[i] = fill
				}
				b[pos] = byte(c)
				want := good(byte(c)) && good(fill)
				if got := runBytes8(load64(b, 0)); got != want {
					t.Fatalf("%q: runBytes8 %v, want %v", b, got, want)
				}
			}
		}
	}
}

// TestKeys: keys holding a card number or an e-mail address are masked;
// the names stay distinct, kept keys first, masked ones in key order.
func TestKeys(t *testing.T) {
	r := New(Default())
	got := r.Keys([]string{"***@x.com", "***@x.com#2", "a@x.com", "b@x.com", "id", "n 4111111111111111"})
	want := []string{"***@x.com", "***@x.com#2", "***@x.com#3", "***@x.com#4", "id", "n ************1111"}
	assert.Equal(t, want, got)
	assert.Equal(t, []string{"a@x.com"}, New(Rules{}).Keys([]string{"a@x.com"}), "masking off")
}
