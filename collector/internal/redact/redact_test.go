package redact

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

func TestRedactJSON(t *testing.T) {
	r := New(Default())
	for _, tc := range []struct {
		name, in, want string
	}{
		{"card by key", `{"card_number":"4111 1111 1111 1111"}`, `{"card_number":"************1111"}`},
		{"card by pattern in text", `{"note":"paid with 4111-1111-1111-1111 ok"}`, `{"note":"paid with ************1111 ok"}`},
		{"card as number", `{"x":4111111111111111}`, `{"x":"************1111"}`},
		{"non-luhn digits kept", `{"sku":"1234567812345678"}`, `{"sku":"1234567812345678"}`},
		{"cvv", `{"payment":{"CVV":"123"}}`, `{"payment":{"CVV":"***"}}`},
		{"email in text", `{"msg":"contact jane.doe@example.com now"}`, `{"msg":"contact ***@example.com now"}`},
		{"phone key", `{"customer":{"phone":"+1 555 0100"}}`, `{"customer":{"phone":"***"}}`},
		{"arrays", `{"items":[{"cardNumber":"5500005555555559"}]}`, `{"items":[{"cardNumber":"************5559"}]}`},
		{"null left alone", `{"email":null}`, `{"email":null}`},
		{"epoch millis kept", `{"ts":1764000000000,"s":"1764000000000"}`, `{"ts":1764000000000,"s":"1764000000000"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := json.NewDecoder(strings.NewReader(tc.in))
			d.UseNumber()
			var v any
			require.NoError(t, d.Decode(&v))
			out, _ := r.Value(v)
			b, err := json.Marshal(out)
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(b))
		})
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
