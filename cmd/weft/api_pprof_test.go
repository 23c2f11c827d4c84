package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
)

// Profiles are served only when http.pprof asks for them.
func TestAPIPprofOptIn(t *testing.T) {
	for _, on := range []bool{false, true} {
		h := newAPI(nil, nil, nil, prometheus.NewRegistry(), zerolog.Nop(), on)
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			want := http.StatusNotFound
			if on {
				want = http.StatusOK
			}
			assert.Equal(t, want, rec.Code, "pprof=%v %s", on, path)
		}
	}
}
