package redact

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestOpaque(t *testing.T) {
	r := New(Default())
	for _, tc := range []struct{ name, in, want string }{
		{"broken JSON, CVV quoted", `{"order_id":"o-1","cvv":"123","x":`, `{"order_id":"o-1","cvv":"***","x":`},
		{"broken JSON, CVV a number", `{"cvv": 123, "amount": 5`, `{"cvv": ***, "amount": 5`},
		{"unterminated value", `{"cvv":"12`, `{"cvv":"***`},
		{"nested object", `{"card":{"number":"4111 1111 1111 1111","cvc":"999"},"ok":1`, `{"card":***,"ok":1`},
		{"unclosed object", `{"card":{"cvc":"999"`, `{"card":***`},
		{"form data", `order=o-1&Card-Number=4111111111111111&cvv=123&ok=1`, `order=o-1&Card-Number=***&cvv=***&ok=1`},
		{"single quotes", `{'cvv': '123', 'x': 1}`, `{'cvv': '***', 'x': 1}`},
		{"escaped quote inside", `{"password":"a\"b","x":1}`, `{"password":"***","x":1}`},
		{"key spelled otherwise", `SECURITY_CODE = 777;`, `SECURITY_CODE = ***;`},
		{"card and e-mail anywhere", `ship to jane.doe@example.com, pay 4111-1111-1111-1111`, `ship to ***@example.com, pay ************1111`},
		{"a longer key is not sensitive", `{"email_verified":true}`, `{"email_verified":true}`},
		{"a key without a value", `the cvv was wrong`, `the cvv was wrong`},
		{"key at the end", `cvv:`, `cvv:***`},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, r.Opaque(tc.in)) })
	}
}

// FuzzOpaque: whatever the text, Opaque does not panic, leaves no value of
// a sensitive key, no Luhn-valid card number and no e-mail address behind.
func FuzzOpaque(f *testing.F) {
	for _, s := range []string{`{"cvv":"123"`, `cvv=1&pan=4111111111111111`, `{"card":{"n":"x"`, `"a\"`, `x@y.io`, `{'cvv'`} {
		f.Add(s)
	}
	r := New(Default())
	f.Fuzz(func(t *testing.T, secret string) {
		if strings.ContainsAny(secret, "\"'\\,;&\n\r{[}])\x00") || strings.TrimLeft(secret, " \t") != secret || secret == "" || strings.Contains(secret, "*") {
			return
		}
		for _, text := range []func(string) string{
			func(v string) string { return `{"x":1,"cvv":"` + v + `","y":` },
			func(v string) string { return `a=1&cvv=` + v + `&b=2` },
			func(v string) string { return `{"card":{"number":"` + v + `"` },
		} {
			assert.Equal(t, r.Opaque(text("Q")), r.Opaque(text(secret)), "nothing of the value under a sensitive key is kept")
		}
		out := r.Opaque(secret)
		assert.NotRegexp(t, `[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`, strings.ReplaceAll(out, "***@", ""))
	})
}
