package redacttest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/collector/internal/redact"
)

// The reference masks as redact's default rules say (the decoder is held
// to it by collector's TestDecodeMatchesOracle).
func TestRedactJSON(t *testing.T) {
	m := New(redact.Default())
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
			out, _ := m.Value(v)
			b, err := json.Marshal(out)
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(b))
		})
	}
}
