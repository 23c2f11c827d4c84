package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	httppprof "net/http/pprof"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/console"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/chstore"
)

// newAPI serves /metrics, /healthz, /readyz and the JSON API, and Go's
// profiles under /debug/pprof/ when pprof is set.
//
// Every /api/ route and /debug/pprof/ goes through authn: a request
// without a valid identity is refused with 401, one whose identity lacks
// the route's role (routeRoles, docs/security.md) with 403; /metrics,
// /healthz and /readyz stay open. Acknowledgements are recorded under the
// authenticated identity, and go into the operator-actions log when
// actions is not nil (the audit trail is on).
//
// jobs serves the replay job routes (replayapi.go); nil serves them with
// replay off.
//
// cons, when not nil, is the web console: its pages at / need a session
// cookie (internal/auth.RequireCookie) with the role routeRoles gives
// them; its login page and assets are open.
//
// traceID, when not nil, gives an order's trace id (orderTraceIDs), put in
// GET /api/v1/orders/{id}'s answer as `weft order -o json` does.
func newAPI(engine *consistency.Engine, store *chstore.Store, col *collector.Collector, actions *collector.ActionLog, authn *auth.Authenticator, reg *prometheus.Registry, log zerolog.Logger, pprof bool, cons *console.Console, jobs *replayJobs, traceID traceIDFunc) http.Handler {
	mux := http.NewServeMux()
	if pprof {
		prof := http.NewServeMux()
		prof.HandleFunc("GET /debug/pprof/", httppprof.Index)
		prof.HandleFunc("GET /debug/pprof/cmdline", httppprof.Cmdline)
		prof.HandleFunc("GET /debug/pprof/profile", httppprof.Profile)
		prof.HandleFunc("GET /debug/pprof/symbol", httppprof.Symbol)
		prof.HandleFunc("GET /debug/pprof/trace", httppprof.Trace)
		mux.Handle("/debug/pprof/", authn.Require(routeRoles["/debug/pprof/"], prof))
	}
	// Routes that do not exist answer 404 only to an authenticated caller.
	mux.Handle("/api/", authn.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, fmt.Errorf("no route %s %s", r.Method, r.URL.Path))
	})))
	route := func(pattern string, h http.HandlerFunc) {
		need, ok := routeRoles[pattern]
		if !ok {
			panic("api route " + pattern + " has no role in routeRoles")
		}
		mux.Handle(pattern, authn.Require(need, h))
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := col.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if err := store.Ping(ctx); err != nil {
			http.Error(w, "not ready: clickhouse: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	route("GET /api/v1/stuck", func(w http.ResponseWriter, r *http.Request) {
		f, err := stuckFilterFromQuery(r.URL.Query())
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, err)
			return
		}
		rep, err := stuckReport(r.Context(), engine, f)
		if err != nil {
			log.Warn().Err(err).Msg("api stuck")
			writeJSONError(w, http.StatusBadGateway, err)
			return
		}
		writeJSON(w, rep)
	})
	route("GET /api/v1/findings", func(w http.ResponseWriter, r *http.Request) {
		f, err := findingFilterFromQuery(r.URL.Query())
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, err)
			return
		}
		fs, err := engine.Findings(r.Context(), f)
		if err != nil {
			writeJSONError(w, http.StatusBadGateway, err)
			return
		}
		if fs == nil {
			fs = []consistency.Finding{}
		}
		writeJSON(w, FindingsReport{Findings: fs})
	})
	route("POST /api/v1/findings/{id}/ack", func(w http.ResponseWriter, r *http.Request) {
		// Who acknowledges is who authenticated: the body says only why.
		id, _ := auth.IdentityFrom(r.Context())
		var body struct {
			Reason string `json:"reason"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || strings.TrimSpace(body.Reason) == "" {
			msg := `want a JSON body {"reason": "..."}; the acknowledgement is recorded under your authenticated identity`
			if err != nil {
				msg += ": " + err.Error()
			}
			writeJSONError(w, http.StatusBadRequest, errors.New(msg))
			return
		}
		f, err := acknowledge(r.Context(), engine, actions, log, id, "http "+r.RemoteAddr, r.PathValue("id"), body.Reason)
		switch {
		case errors.Is(err, errActionNotLogged):
			writeJSONError(w, http.StatusInternalServerError, err)
		case errors.Is(err, consistency.ErrNoFinding):
			writeJSONError(w, http.StatusNotFound, err)
		case err != nil:
			writeJSONError(w, http.StatusConflict, err)
		default:
			writeJSON(w, f)
		}
	})
	route("GET /api/v1/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		rep, err := orderReport(r.Context(), engine, r.PathValue("id"))
		if err != nil {
			writeJSONError(w, http.StatusBadGateway, err)
			return
		}
		if len(rep.Events) == 0 {
			writeJSONError(w, http.StatusNotFound, fmt.Errorf("order %s: no events", r.PathValue("id")))
			return
		}
		if traceID != nil {
			rep.TraceID = traceID(rep.OrderID, rep.Events)
		}
		writeJSON(w, rep)
	})
	route("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		req, err := searchRequestFromQuery(r.URL.Query())
		var s chstore.EventSearch
		if err == nil {
			s, err = req.search(time.Now(), apiParam)
		}
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, err)
			return
		}
		page, err := store.SearchEvents(r.Context(), s)
		if errors.Is(err, chstore.ErrBadSearch) {
			writeJSONError(w, http.StatusBadRequest, err)
			return
		}
		if err != nil {
			log.Warn().Err(err).Msg("api events")
			writeJSONError(w, http.StatusBadGateway, err)
			return
		}
		writeJSON(w, eventsReport(page))
	})
	if jobs == nil {
		// Replay is off: every route that would act says so.
		jobs = newReplayJobs(DefaultConfig(), store, actions, log)
	}
	route("POST /api/v1/replay/jobs", jobs.create)
	route("GET /api/v1/replay/jobs/{id}", jobs.status)
	route("POST /api/v1/replay/jobs/{id}/confirm", jobs.confirm)
	route("POST /api/v1/replay/jobs/{id}/cancel", jobs.cancel)
	if cons != nil {
		for _, rt := range cons.Routes() {
			need, ok := routeRoles[rt.Pattern]
			if !ok {
				panic("console route " + rt.Pattern + " has no role in routeRoles")
			}
			if need == public {
				mux.Handle(rt.Pattern, rt.Handler)
				continue
			}
			mux.Handle(rt.Pattern, authn.RequireCookie(console.CookieName, need, cons.Refused, rt.Handler))
		}
	}
	return mux
}

// stuckFilterFromQuery is the stuck filter of the API's and the console's
// query parameters, as `weft stuck` takes its flags.
func stuckFilterFromQuery(q url.Values) (consistency.Filter, error) {
	f := consistency.Filter{Workflow: q.Get("workflow"), Step: q.Get("step"), Service: q.Get("service"),
		Reason: q.Get("reason"), Limit: defaultStuckLimit, Live: q.Get("live") == "true"}
	if err := checkReason(f.Reason); err != nil {
		return f, fmt.Errorf("reason: %w", err)
	}
	if s := q.Get("older_than"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return f, fmt.Errorf("older_than: %w", err)
		}
		f.OlderThan = d
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return f, fmt.Errorf("limit: %q is not a non-negative number", s)
		}
		f.Limit = n
	}
	return f, nil
}

// findingFilterFromQuery is the findings filter of the API's and the
// console's query parameters: kind, status (active by default, or all),
// order; at most 500.
func findingFilterFromQuery(q url.Values) (consistency.FindingFilter, error) {
	f := consistency.FindingFilter{Kind: q.Get("kind"), OrderID: q.Get("order"), Status: q.Get("status"), Limit: 500}
	if f.Kind != "" && !contains(consistency.Kinds, f.Kind) {
		return f, fmt.Errorf("kind %q: want one of %s", f.Kind, strings.Join(consistency.Kinds, ", "))
	}
	switch f.Status {
	case "":
		f.Status = "active"
	case "all":
		f.Status = ""
	case "active", consistency.StatusOpen, consistency.StatusAcknowledged, consistency.StatusResolved:
	default:
		return f, fmt.Errorf("status %q: want active, open, acknowledged, resolved or all", f.Status)
	}
	return f, nil
}

// errActionNotLogged: an acknowledgement was stored but its entry in the
// operator-actions log was not.
var errActionNotLogged = errors.New("acknowledged, but not in the operator-actions log")

// acknowledge acknowledges a finding as who — the authenticated identity,
// never a name the caller types — from origin ("http ADDR", "console
// ADDR"), and records the action, done or failed, in the operator-actions
// log when the audit trail is on. The API and the console both ack here.
func acknowledge(ctx context.Context, engine *consistency.Engine, actions *collector.ActionLog, log zerolog.Logger, who auth.Identity, origin, findingID, reason string) (consistency.Finding, error) {
	f, err := engine.Acknowledge(ctx, findingID, who.Name, reason)
	outcome, detail := outcomeOf(err, reason)
	if lerr := logAction(ctx, actions, auditor.Action{Actor: who.Name, Origin: origin, Verb: "ack",
		Resource: "finding/" + findingID, Outcome: outcome, Detail: detail}, f.OrderID); lerr != nil {
		log.Error().Err(lerr).Msg("operator action not logged")
		if err == nil {
			return f, fmt.Errorf("%w: %w", errActionNotLogged, lerr)
		}
	}
	return f, err
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
