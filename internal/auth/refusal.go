package auth

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// Reason is why a request was refused: the reason label of
// weft_http_requests_refused_total, a bounded set.
type Reason string

// The reasons.
const (
	// NoToken: the request has no Authorization header (401).
	NoToken Reason = "no_token"
	// BadToken: an unknown token, a JWT that is malformed or whose
	// signature does not verify, or a header that is not Bearer (401).
	BadToken Reason = "bad_token"
	// Expired: a JWT past its expiry (401).
	Expired Reason = "expired"
	// WrongAudience: a JWT issued for another audience (401).
	WrongAudience Reason = "wrong_audience"
	// WrongIssuer: a JWT of another issuer (401).
	WrongIssuer Reason = "wrong_issuer"
	// NotConfigured: authentication is on and nothing is configured to
	// authenticate against (401).
	NotConfigured Reason = "not_configured"
	// ForbiddenRole: an authenticated identity lacking the role (403).
	ForbiddenRole Reason = "forbidden_role"
)

// Reasons are every reason, in the order docs list them.
var Reasons = []Reason{NoToken, BadToken, Expired, WrongAudience, WrongIssuer, NotConfigured, ForbiddenRole}

// Refusal is why a request is refused.
type Refusal struct {
	Reason Reason
	// Message is for the caller: the answer's "error".
	Message string
	// Detail is for the log only (a verifier's error).
	Detail string
}

func newRefusedCounter() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_http_requests_refused_total",
		Help: "HTTP requests refused with 401 or 403, by reason.",
	}, []string{"reason"})
	for _, r := range Reasons {
		c.WithLabelValues(string(r))
	}
	return c
}

// maxLoggedPath bounds the path a refusal's log line quotes.
const maxLoggedPath = 256

// refuse counts the refusal, logs it at warn (note) and answers it: a JSON body
// {"error": …, "reason": …} and, for a 401, the WWW-Authenticate header
// of RFC 6750.
func (a *Authenticator) refuse(w http.ResponseWriter, r *http.Request, code int, ref *Refusal, id Identity) {
	a.note(r, code, ref, id)
	switch {
	case code == http.StatusForbidden:
		w.Header().Set("WWW-Authenticate", `Bearer realm="weft", error="insufficient_scope"`)
	case ref.Reason == NoToken || ref.Reason == NotConfigured:
		w.Header().Set("WWW-Authenticate", `Bearer realm="weft"`)
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="weft", error="invalid_token"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": ref.Message, "reason": string(ref.Reason)})
}

// Refused is the counter of refusals for reason, for tests.
func (a *Authenticator) Refused(reason Reason) prometheus.Counter {
	return a.refused.WithLabelValues(string(reason))
}

// note counts a refusal and logs it at warn.
func (a *Authenticator) note(r *http.Request, code int, ref *Refusal, id Identity) {
	a.refused.WithLabelValues(string(ref.Reason)).Inc()
	path := r.URL.Path
	if len(path) > maxLoggedPath {
		path = path[:maxLoggedPath] + "…"
	}
	ev := a.s.Logger.Warn().Int("status", code).Str("route", r.Method+" "+path).Str("remote", r.RemoteAddr).
		Str("reason", string(ref.Reason)).Str("error", ref.Message)
	if id.Name != "" {
		ev = ev.Str("identity", id.Name).Str("method", id.Method)
	}
	if ref.Detail != "" {
		ev = ev.Str("detail", ref.Detail)
	}
	ev.Msg("http request refused")
}
