package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/auth"
)

// routeRoles is the role each protected route needs (docs/security.md has
// the same table): every role reads, operators act, auditors audit.
var routeRoles = map[string]auth.Role{
	"GET /api/v1/stuck":              auth.Viewer,
	"GET /api/v1/findings":           auth.Viewer,
	"GET /api/v1/orders/{id}":        auth.Viewer,
	"GET /api/v1/events":             auth.Viewer,
	"POST /api/v1/findings/{id}/ack": auth.Operator,
	"/debug/pprof/":                  auth.Operator,

	// Replay and redrive jobs (docs/replay.md, "HTTP API"): operators
	// create (a dry run), confirm and cancel them; every role reads them.
	"POST /api/v1/replay/jobs":              auth.Operator,
	"GET /api/v1/replay/jobs/{id}":          auth.Viewer,
	"POST /api/v1/replay/jobs/{id}/confirm": auth.Operator,
	"POST /api/v1/replay/jobs/{id}/cancel":  auth.Operator,

	// The web console (docs/console.md): its pages read, acknowledging
	// acts; the login form, logging out (which only deletes the cookie,
	// and must work with a session whose token was revoked) and the
	// stylesheet and script are open.
	"GET /{$}":                auth.Viewer,
	"GET /orders/{id}":        auth.Viewer,
	"GET /findings":           auth.Viewer,
	"GET /queues":             auth.Viewer,
	"GET /audit":              auth.Viewer,
	"POST /findings/{id}/ack": auth.Operator,
	"POST /logout":            public,
	"GET /login":              public,
	"POST /login":             public,
	"GET /assets/":            public,
}

// public marks a route anyone may call: the console's login form, its
// logout and its static assets, which hold no data.
const public auth.Role = ""

// startAuth builds the API's authenticator and starts it (reads the
// tokens file, discovers the OIDC issuer): a failure is start-up's.
// A 403 — an authenticated identity lacking the role — is recorded in the
// operator-actions log as denied when actions is not nil.
func startAuth(ctx context.Context, cfg auth.Config, actions *collector.ActionLog, reg prometheus.Registerer, log zerolog.Logger) (*auth.Authenticator, error) {
	s := auth.Settings{Logger: log.With().Str("component", "http_auth").Logger(), Registerer: reg}
	if actions != nil {
		s.OnDenied = func(r *http.Request, id auth.Identity, need auth.Role) {
			verb, resource := deniedAction(r)
			roles := make([]string, len(id.Roles))
			for i, role := range id.Roles {
				roles[i] = string(role)
			}
			a := auditor.Action{Actor: id.Name, Origin: "http " + r.RemoteAddr, Verb: verb, Resource: resource, Outcome: auditor.OutcomeDenied,
				Detail: fmt.Sprintf("%s %s needs the %s role; %s has %s", r.Method, r.URL.Path, need, id.Name, strings.Join(roles, ", "))}
			a.Detail = strings.ToValidUTF8(a.Detail, "?")
			// Recorded even when the caller hangs up at once.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), deniedLogTimeout)
			defer cancel()
			if err := logAction(ctx, actions, a, ""); err != nil {
				log.Error().Err(err).Msg("refused request not logged")
			}
		}
	}
	a, err := auth.New(cfg, s)
	if err != nil {
		return nil, fmt.Errorf("http.auth: %w", err)
	}
	if err := a.Start(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// deniedLogTimeout bounds the wait for a denied action's entry.
const deniedLogTimeout = 10 * time.Second

// maxDeniedPath bounds the path a denied action's resource quotes.
const maxDeniedPath = 200

// deniedAction is the verb and resource of a refused request, as the
// operator-actions log names them when it succeeds.
func deniedAction(r *http.Request) (verb, resource string) {
	switch r.Pattern {
	case "POST /api/v1/findings/{id}/ack", "POST /findings/{id}/ack":
		return "ack", "finding/" + strings.ToValidUTF8(r.PathValue("id"), "?")
	case "/debug/pprof/":
		verb = "profile"
	case "POST /api/v1/replay/jobs", "POST /api/v1/replay/jobs/{id}/confirm", "POST /api/v1/replay/jobs/{id}/cancel":
		verb = "replay"
	default:
		verb = "read"
	}
	path := r.URL.Path
	if len(path) > maxDeniedPath {
		path = path[:maxDeniedPath]
	}
	return verb, strings.ToValidUTF8(strings.TrimPrefix(path, "/"), "?")
}
