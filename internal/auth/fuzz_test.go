package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAuthorizationHeader: whatever the Authorization header holds, a
// request gets through only when it carries a configured token (or a JWT
// the issuer signed, which a fuzzer cannot make); anything else is refused
// with 401, without a panic.
func FuzzAuthorizationHeader(f *testing.F) {
	fx := newFixture(f, nil)
	good := fx.tokens[Viewer]
	for _, s := range []string{"", "Bearer ", "Bearer " + good, "bearer " + good + " ", "Basic abc", "Bearer a.b.c",
		"Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.", "Bearer weft_", "Bearer " + good[:20], "Bearer\t" + good} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		req := httptest.NewRequest("GET", "/read", nil)
		req.Header["Authorization"] = []string{header}
		rec := httptest.NewRecorder()
		fx.handler.ServeHTTP(rec, req)
		_, raw, _ := strings.Cut(header, " ")
		raw = strings.TrimSpace(raw)
		switch rec.Code {
		case http.StatusOK:
			known := false
			for _, tok := range fx.tokens {
				known = known || raw == tok
			}
			if !known {
				t.Fatalf("header %q got through", header)
			}
		case http.StatusUnauthorized:
		default:
			t.Fatalf("header %q: status %d", header, rec.Code)
		}
	})
}

// FuzzUnverifiedClaims: reading a JWT's claims for a refusal's reason
// never panics, whatever the token.
func FuzzUnverifiedClaims(f *testing.F) {
	for _, s := range []string{"", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4IiwiYXVkIjpbImEiXX0.sig", "..", "x.eyJhdWQiOjF9.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, ok := unverifiedClaims(raw)
		if !ok && (c.Issuer != "" || c.Audience != nil) {
			t.Fatalf("%q: claims %+v reported as unreadable", raw, c)
		}
	})
}
