package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/replay"
)

// The replay job routes of the HTTP API (docs/replay.md, "HTTP API"): an
// operator creates a job as a dry run (the plan is stored and returned,
// nothing is produced), confirms it (weft run produces it in the
// background, with the same transactional producer and cursor as
// `weft replay`), reads its status and cancels it. Every step is an
// operator action under the authenticated identity.

// replayJobs serves those routes and runs the jobs confirmed there. It is
// a component of weft run: stopping weft cancels the jobs it runs, each
// left resumable, and waits for their state to be stored.
type replayJobs struct {
	cfg     Config
	store   *chstore.Store
	actions *collector.ActionLog
	log     zerolog.Logger

	base context.Context // the jobs' context; ended by stop
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	running map[string]*runningJob // job id → its run in this process

	records replayRecords // registered by register
}

// runningJob is a job this process runs.
type runningJob struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func newReplayJobs(cfg Config, store *chstore.Store, actions *collector.ActionLog, log zerolog.Logger) *replayJobs {
	base, stop := context.WithCancel(context.Background())
	return &replayJobs{cfg: cfg, store: store, actions: actions, log: log.With().Str("component", "replay").Logger(),
		base: base, stop: stop, running: map[string]*runningJob{}, records: newReplayRecords()}
}

// register registers weft_replay_records_total on reg.
func (s *replayJobs) register(reg prometheus.Registerer) { reg.MustRegister(s.records.c) }

// Start does nothing: each request and each job connects on its own.
func (s *replayJobs) Start(context.Context) error { return nil }

// Run waits for ctx to end, then cancels the jobs under way and waits
// until each stored how far it got.
func (s *replayJobs) Run(ctx context.Context) error {
	<-ctx.Done()
	s.stop()
	s.wg.Wait()
	return nil
}

// Shutdown cancels the jobs under way.
func (s *replayJobs) Shutdown(context.Context) error {
	s.stop()
	return nil
}

// replayRequest is the body of POST /api/v1/replay/jobs: what weft
// replay order|finding and weft redrive take as arguments and flags.
type replayRequest struct {
	Kind      string   `json:"kind"` // order, finding, range or redrive
	OrderID   string   `json:"order_id"`
	FindingID string   `json:"finding_id"`
	Topic     string   `json:"topic"` // the dead-letter topic of a redrive, the topic of a range
	Types     []string `json:"types"`
	To        string   `json:"to"` // the target topic
	// From and Until bound a range (RFC 3339, a date, a duration back
	// from now, or now); Services and OrderIDs filter it.
	From      string   `json:"from"`
	Until     string   `json:"until"`
	Services  []string `json:"services"`
	OrderIDs  []string `json:"order_ids"`
	OlderThan string   `json:"older_than"`
	NewerThan string   `json:"newer_than"`
	Header    string   `json:"header"` // NAME=VALUE
	Limit     int      `json:"limit"`
	// Rate is records a second at most when the job runs (0: no cap;
	// absent: replay.rate).
	Rate *int `json:"rate"`
}

// JobPlanReport answers a job's creation: the job, planned and not
// started, and what it would produce.
type JobPlanReport struct {
	DryRun bool        `json:"dry_run"`
	Job    replay.Job  `json:"job"`
	Plan   PlanSummary `json:"plan"`
	// Confirm is the route that runs the job.
	Confirm string `json:"confirm"`
}

// PlanSummary is a plan as the API shows it: the counts and the first
// rows, as weft replay --dry-run prints them.
type PlanSummary struct {
	Kind     string           `json:"kind"`
	Resource string           `json:"resource"`
	Records  int              `json:"records"`
	PerTopic map[string]int   `json:"per_topic"`
	First    []replay.Item    `json:"first"`
	Missing  []replay.Missing `json:"missing"`
	Skipped  map[string]int   `json:"skipped,omitempty"`
}

func summarize(p replay.Plan) PlanSummary {
	missing := p.Missing
	if missing == nil {
		missing = []replay.Missing{}
	}
	return PlanSummary{Kind: p.Kind, Resource: p.Resource, Records: len(p.Items), PerTopic: p.PerTopic(),
		First: p.Items[:min(len(p.Items), planRows)], Missing: missing[:min(len(missing), 100)], Skipped: p.Skipped}
}

// JobStatus answers a job's status, confirmation and cancellation.
type JobStatus struct {
	Job replay.Job `json:"job"`
	// Here says that this weft run is running the job now.
	Here bool `json:"running_here"`
}

// plan turns a request into the plan it asks for; a request that names
// no record is an error naming its key.
func (q replayRequest) plan(ctx context.Context, cfg Config, r *replay.Replayer) (replay.Plan, error) {
	switch q.Kind {
	case replay.KindOrder:
		if q.OrderID == "" {
			return replay.Plan{}, badRequest{errors.New("order_id: required for kind order")}
		}
		return r.PlanOrder(ctx, replay.OrderRequest{OrderID: q.OrderID, Types: q.Types, To: q.To, DLQPattern: cfg.Collector.Lag.DLQPattern})
	case replay.KindFinding:
		if q.FindingID == "" {
			return replay.Plan{}, badRequest{errors.New("finding_id: required for kind finding")}
		}
		return r.PlanFinding(ctx, q.FindingID, q.To)
	case replay.KindRange:
		a := rangeArgs{topic: q.Topic, from: q.From, to: q.Until, types: q.Types, services: q.Services, target: q.To, limit: q.Limit}
		rq, err := a.request(time.Now())
		if err != nil {
			// The CLI's flag names, as the body's keys.
			msg := strings.NewReplacer("--topic", "topic", "--from", "from", "--to", "until", "--limit", "limit").Replace(err.Error())
			return replay.Plan{}, badRequest{errors.New(msg)}
		}
		rq.OrderIDs = q.OrderIDs
		return r.PlanRange(ctx, rq)
	case replay.KindRedrive:
		rq := replay.RedriveRequest{Topic: q.Topic, To: q.To, Limit: q.Limit}
		if q.Topic == "" {
			return replay.Plan{}, badRequest{errors.New("topic: required for kind redrive (the dead-letter topic)")}
		}
		var err error
		if rq.OlderThan, err = optDuration("older_than", q.OlderThan); err != nil {
			return replay.Plan{}, err
		}
		if rq.NewerThan, err = optDuration("newer_than", q.NewerThan); err != nil {
			return replay.Plan{}, err
		}
		if q.Header != "" {
			name, value, ok := strings.Cut(q.Header, "=")
			if !ok || name == "" {
				return replay.Plan{}, badRequest{fmt.Errorf("header: %q: want NAME=VALUE", q.Header)}
			}
			rq.HeaderName, rq.HeaderValue = name, value
		}
		if q.Limit < 0 {
			return replay.Plan{}, badRequest{fmt.Errorf("limit: must not be negative, got %d", q.Limit)}
		}
		return r.PlanRedrive(ctx, rq)
	}
	return replay.Plan{}, badRequest{fmt.Errorf("kind: %q: want order, finding, range or redrive", q.Kind)}
}

func optDuration(key, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, badRequest{fmt.Errorf("%s: %q is not a non-negative duration (e.g. 10m)", key, s)}
	}
	return d, nil
}

// badRequest is a request the API answers with 400.
type badRequest struct{ error }

func (b badRequest) Unwrap() error { return b.error }

// refusedCode is the status of an error of the replay routes: 400 for a
// bad request, 409 for a refusal (replay off, a topic not allowed, nothing
// to produce, a job in the wrong state: the body says which), 502 when
// Kafka or ClickHouse failed.
func refusedCode(err error) int {
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		return http.StatusBadRequest
	case errors.Is(err, replay.ErrRefused):
		return http.StatusConflict
	}
	return http.StatusBadGateway
}

// errReplayDisabled is the refusal of every replay route that would act
// when replay.enabled is off.
var errReplayDisabled = fmt.Errorf("%w: replay is disabled: set replay.enabled and replay.allow in the config of weft run (docs/replay.md)", replay.ErrRefused)

// replayer starts a Replayer acting as the request's identity.
func (s *replayJobs) replayer(ctx context.Context, who auth.Identity, origin string) (*replay.Replayer, error) {
	return startReplayer(ctx, s.cfg, s.store, s.actions, who.Name, origin, func(m replay.Missing) {
		s.log.Warn().Str("record", m.From.String()).Str("reason", m.Reason).Msg("replay: record skipped")
	})
}

// deny logs a refused request as a denied operator action and answers it.
func (s *replayJobs) deny(w http.ResponseWriter, r *http.Request, who auth.Identity, verb, resource string, err error) {
	code := refusedCode(err)
	if code == http.StatusConflict {
		if lerr := logAction(r.Context(), s.actions, auditor.Action{Actor: who.Name, Origin: "http " + r.RemoteAddr, Verb: verb,
			Resource: resource, Outcome: auditor.OutcomeDenied, Detail: truncate(err.Error(), auditor.MaxDetailLen)}, ""); lerr != nil {
			s.log.Error().Err(lerr).Msg("refused replay request not logged")
		}
	} else if code == http.StatusBadGateway {
		s.log.Warn().Err(err).Str("resource", resource).Msg("replay api")
	}
	writeJSONError(w, code, err)
}

// create plans a job, stores it as planned and answers with its plan:
// nothing is produced until it is confirmed.
func (s *replayJobs) create(w http.ResponseWriter, r *http.Request) {
	who, _ := auth.IdentityFrom(r.Context())
	if !s.cfg.Replay.Enabled {
		s.deny(w, r, who, "replay", "api/replay/jobs", errReplayDisabled)
		return
	}
	var q replayRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		writeJSONError(w, http.StatusBadRequest, fmt.Errorf(`want a JSON body {"kind": "order|finding|range|redrive", ...} (docs/replay.md): %w`, err))
		return
	}
	rate := s.cfg.Replay.Rate
	if q.Rate != nil {
		if *q.Rate < 0 {
			writeJSONError(w, http.StatusBadRequest, fmt.Errorf("rate: must not be negative (0 is no cap), got %d", *q.Rate))
			return
		}
		rate = *q.Rate
	}
	verb := "replay"
	if q.Kind == replay.KindRedrive {
		verb = "redrive"
	}
	rp, err := s.replayer(r.Context(), who, "http "+r.RemoteAddr)
	if err != nil {
		s.deny(w, r, who, verb, "api/replay/jobs", err)
		return
	}
	defer rp.Shutdown(context.Background()) //nolint:errcheck // closes clients only
	p, err := q.plan(r.Context(), s.cfg, rp)
	if err == nil {
		err = rp.Check(r.Context(), p)
	}
	if err != nil {
		resource := p.Resource
		if resource == "" {
			resource = "api/replay/jobs"
		}
		s.deny(w, r, who, verb, resource, err)
		return
	}
	j, err := rp.Create(r.Context(), p, rate)
	if err != nil {
		s.deny(w, r, who, verb, p.Resource, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, JobPlanReport{DryRun: true, Job: j, Plan: summarize(p), Confirm: "POST /api/v1/replay/jobs/" + j.ID + "/confirm"})
}

// load reads the job the path names: 400 for a malformed id, 404 for an
// unknown one.
func (s *replayJobs) load(w http.ResponseWriter, r *http.Request) (replay.Job, bool) {
	id := r.PathValue("id")
	if !replay.ValidJobID(id) {
		writeJSONError(w, http.StatusBadRequest, fmt.Errorf("%q is not a replay job id (rpl- and 16 hex digits)", truncate(id, 40)))
		return replay.Job{}, false
	}
	j, err := replay.LoadJob(r.Context(), s.store, id)
	if errors.Is(err, replay.ErrRefused) {
		writeJSONError(w, http.StatusNotFound, err)
		return replay.Job{}, false
	}
	if err != nil {
		writeJSONError(w, http.StatusBadGateway, err)
		return replay.Job{}, false
	}
	return j, true
}

func (s *replayJobs) runningHere(id string) *runningJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[id]
}

// status answers a job as stored.
func (s *replayJobs) status(w http.ResponseWriter, r *http.Request) {
	j, ok := s.load(w, r)
	if !ok {
		return
	}
	writeJSON(w, JobStatus{Job: j, Here: s.runningHere(j.ID) != nil})
}

// confirm starts a planned job (or resumes a cancelled, failed or killed
// one) in the background and answers 202 at once; GET the job for its
// progress.
func (s *replayJobs) confirm(w http.ResponseWriter, r *http.Request) {
	who, _ := auth.IdentityFrom(r.Context())
	if !s.cfg.Replay.Enabled {
		s.deny(w, r, who, "replay", "job/"+truncate(r.PathValue("id"), 40), errReplayDisabled)
		return
	}
	j, ok := s.load(w, r)
	if !ok {
		return
	}
	verb, resource := verbOf(j.Kind), j.Resource
	var body struct {
		Rate *int `json:"rate"`
	}
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<12))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			writeJSONError(w, http.StatusBadRequest, fmt.Errorf(`want no body or {"rate": N}: %w`, err))
			return
		}
	}
	rate := j.Rate
	if body.Rate != nil {
		if *body.Rate < 0 {
			writeJSONError(w, http.StatusBadRequest, fmt.Errorf("rate: must not be negative (0 is no cap), got %d", *body.Rate))
			return
		}
		rate = *body.Rate
	}
	if j.Status == replay.StatusFinished {
		s.deny(w, r, who, verb, resource, fmt.Errorf("%w: replay job %s is finished (%d records produced)", replay.ErrRefused, j.ID, j.Produced))
		return
	}
	rp, err := s.replayer(r.Context(), who, "http "+r.RemoteAddr)
	if err != nil {
		s.deny(w, r, who, verb, resource, err)
		return
	}
	// Refused here, before anything starts, when this process may not
	// produce to a target (Run checks again).
	if err := rp.CheckJob(r.Context(), j); err != nil {
		_ = rp.Shutdown(context.Background())
		s.deny(w, r, who, verb, resource, err)
		return
	}
	ctx, cancel := context.WithCancel(s.base)
	run := &runningJob{cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	if s.running[j.ID] != nil || s.base.Err() != nil {
		s.mu.Unlock()
		cancel()
		_ = rp.Shutdown(context.Background())
		s.deny(w, r, who, verb, resource, fmt.Errorf("%w: replay job %s is already running here, or weft is stopping", replay.ErrRefused, j.ID))
		return
	}
	s.running[j.ID] = run
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer close(run.done)
		defer cancel()
		defer func() {
			s.mu.Lock()
			delete(s.running, j.ID)
			s.mu.Unlock()
		}()
		defer rp.Shutdown(context.Background()) //nolint:errcheck // closes clients only
		rp.SetCommitted(s.records.committed)
		done, err := rp.Run(ctx, j.ID, rate)
		ev := s.log.Info()
		if err != nil && !errors.Is(err, replay.ErrCancelled) {
			ev = s.log.Error().Err(err)
		}
		ev.Str("job", j.ID).Str("status", done.Status).Uint64("produced", done.Produced).Uint64("missing", done.Missing).Msg("replay job ended")
	}()
	j.Status, j.Rate = replay.StatusRunning, rate
	w.WriteHeader(http.StatusAccepted)
	writeJSON(w, JobStatus{Job: j, Here: true})
}

// cancelWait bounds how long a cancel waits for a job this process runs
// to abort its batch and store its state.
const cancelWait = 30 * time.Second

// cancel cancels a job: one this process runs is stopped (its batch
// aborted, resumable), one nobody runs is marked cancelled.
func (s *replayJobs) cancel(w http.ResponseWriter, r *http.Request) {
	who, _ := auth.IdentityFrom(r.Context())
	j, ok := s.load(w, r)
	if !ok {
		return
	}
	verb, origin := verbOf(j.Kind), "http "+r.RemoteAddr
	if run := s.runningHere(j.ID); run != nil {
		// Who cancelled is logged first; the job logs its "cancelled" when
		// its batch is aborted and its state stored.
		if err := logAction(r.Context(), s.actions, auditor.Action{Actor: who.Name, Origin: origin, Verb: verb, Resource: j.Resource,
			Outcome: auditor.OutcomeSuccess, Detail: "cancel job " + j.ID + " (running here)"}, ""); err != nil {
			writeJSONError(w, http.StatusInternalServerError, err)
			return
		}
		run.cancel()
		select {
		case <-run.done:
		case <-time.After(cancelWait):
		case <-r.Context().Done():
		}
		if j, ok = s.load(w, r); ok {
			writeJSON(w, JobStatus{Job: j, Here: s.runningHere(j.ID) != nil})
		}
		return
	}
	if !s.cfg.Replay.Enabled {
		s.deny(w, r, who, verb, j.Resource, errReplayDisabled)
		return
	}
	rp, err := s.replayer(r.Context(), who, origin)
	if err != nil {
		s.deny(w, r, who, verb, j.Resource, err)
		return
	}
	defer rp.Shutdown(context.Background()) //nolint:errcheck // closes clients only
	j, err = rp.Cancel(r.Context(), j.ID)
	if err != nil {
		s.deny(w, r, who, verb, j.Resource, err)
		return
	}
	writeJSON(w, JobStatus{Job: j})
}
