package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	httppprof "net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/chstore"
)

// newAPI serves /metrics, /healthz, /readyz and the JSON API, and Go's
// profiles under /debug/pprof/ when pprof is set.
func newAPI(engine *consistency.Engine, store *chstore.Store, col *collector.Collector, reg *prometheus.Registry, log zerolog.Logger, pprof bool) http.Handler {
	mux := http.NewServeMux()
	if pprof {
		mux.HandleFunc("GET /debug/pprof/", httppprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", httppprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", httppprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", httppprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", httppprof.Trace)
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
	mux.HandleFunc("GET /api/v1/stuck", func(w http.ResponseWriter, r *http.Request) {
		f := consistency.Filter{Workflow: r.URL.Query().Get("workflow"), Step: r.URL.Query().Get("step"), Service: r.URL.Query().Get("service"),
			Limit: defaultStuckLimit, Live: r.URL.Query().Get("live") == "true"}
		if s := r.URL.Query().Get("older_than"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil {
				writeJSONError(w, http.StatusBadRequest, fmt.Errorf("older_than: %w", err))
				return
			}
			f.OlderThan = d
		}
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				writeJSONError(w, http.StatusBadRequest, fmt.Errorf("limit: %q is not a non-negative number", s))
				return
			}
			f.Limit = n
		}
		rep, err := stuckReport(r.Context(), engine, f)
		if err != nil {
			log.Warn().Err(err).Msg("api stuck")
			writeJSONError(w, http.StatusBadGateway, err)
			return
		}
		writeJSON(w, rep)
	})
	mux.HandleFunc("GET /api/v1/findings", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := consistency.FindingFilter{Kind: q.Get("kind"), OrderID: q.Get("order"), Status: q.Get("status"), Limit: 500}
		if f.Status == "" {
			f.Status = "active"
		} else if f.Status == "all" {
			f.Status = ""
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
	mux.HandleFunc("POST /api/v1/findings/{id}/ack", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			By     string `json:"by"`
			Reason string `json:"reason"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil || body.By == "" || body.Reason == "" {
			writeJSONError(w, http.StatusBadRequest, fmt.Errorf(`want a JSON body {"by": "...", "reason": "..."}`))
			return
		}
		f, err := engine.Acknowledge(r.Context(), r.PathValue("id"), body.By, body.Reason)
		switch {
		case errors.Is(err, consistency.ErrNoFinding):
			writeJSONError(w, http.StatusNotFound, err)
		case err != nil:
			writeJSONError(w, http.StatusConflict, err)
		default:
			writeJSON(w, f)
		}
	})
	mux.HandleFunc("GET /api/v1/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		rep, err := orderReport(r.Context(), engine, r.PathValue("id"))
		if err != nil {
			writeJSONError(w, http.StatusBadGateway, err)
			return
		}
		if len(rep.Events) == 0 {
			writeJSONError(w, http.StatusNotFound, fmt.Errorf("order %s: no events", r.PathValue("id")))
			return
		}
		writeJSON(w, rep)
	})
	mux.HandleFunc("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
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
	return mux
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
