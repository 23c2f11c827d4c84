package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"

	"github.com/weft-sh/weft/internal/auth"
)

// Profiles are served only when http.pprof asks for them, and only to
// operators.
func TestAPIPprofOptIn(t *testing.T) {
	authn, tokens := testAuth(t, "test", nil, nil, nil)
	for _, on := range []bool{false, true} {
		h := newAPI(nil, nil, nil, nil, authn, prometheus.NewRegistry(), zerolog.Nop(), on, nil, nil, nil)
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
			for _, caller := range []struct {
				token string
				want  int
			}{{"", http.StatusUnauthorized}, {tokens[auth.Viewer], http.StatusForbidden},
				{tokens[auth.Auditor], http.StatusForbidden}, {tokens[auth.Operator], http.StatusOK}} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, withToken(httptest.NewRequest(http.MethodGet, path, nil), caller.token))
				want := caller.want
				if !on {
					want = http.StatusNotFound
				}
				assert.Equal(t, want, rec.Code, "pprof=%v %s", on, path)
			}
		}
	}
}
