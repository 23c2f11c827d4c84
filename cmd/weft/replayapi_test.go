package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/testenv"
	"github.com/weft-sh/weft/replay"
)

// TestReplayAPI: on the real servers, an operator creates a redrive as a
// dry run (the plan comes back, nothing is produced), confirms it (weft
// produces it in the background; kcat reads every record once with the
// replay headers naming the operator), cancels a slow job half way and
// confirms it again to finish it (each record once). Refusals write
// nothing and say why: a viewer, a topic not allow-listed (at creation,
// and at confirmation of a job planned under another allow-list), replay
// disabled. Each step is an operator action under the token's identity.
func TestReplayAPI(t *testing.T) {
	brokers := testenv.Kafka(t)
	store := testenv.Store(t)
	name := testenv.Name(t)
	ctx := context.Background()
	dlq, target, other := "payments_"+name+".dlq", "payments_"+name, "refunds_"+name
	testenv.CreateTopic(t, brokers, dlq, 1, nil)
	testenv.CreateTopic(t, brokers, target, 2, nil)
	testenv.CreateTopic(t, brokers, other, 1, nil)
	const n = 30
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	for i := range n {
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: dlq, Key: []byte(fmt.Sprintf("ord-%d", i)),
			Headers: []kgo.RecordHeader{{Key: "dlq-original-topic", Value: []byte(target)}},
			Value:   []byte(fmt.Sprintf(`{"event_id":"e-%d","event_type":"PaymentFailed","order_id":"ord-%d"}`, i, i))}).FirstErr())
	}

	actions, _ := auditedConfig(t, store)
	authn, tokens := testAuth(t, "dana", actions, nil, nil)
	cfg := DefaultConfig()
	cfg.Kafka.Brokers = brokers
	cfg.Replay.Enabled, cfg.Replay.Allow, cfg.Replay.BatchRecords = true, []string{regexp.QuoteMeta(target)}, 5
	jobs := newReplayJobs(cfg, store, actions, zerolog.Nop())
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- jobs.Run(runCtx) }()
	srv := httptest.NewServer(newAPI(consistency.NewEngine(store, nil), store, nil, actions, authn, prometheus.NewRegistry(), zerolog.Nop(), false, nil, jobs, nil))
	defer srv.Close()

	call := func(srvURL string, role auth.Role, method, path, body string, out any) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srvURL+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(withToken(req, tokens[role]))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		if out != nil && resp.StatusCode < 300 {
			require.NoError(t, json.Unmarshal(b, out), string(b))
		}
		return resp.StatusCode, string(b)
	}
	url := srv.URL
	jobCount := func() uint64 {
		var c uint64
		require.NoError(t, testenv.Conn(t).QueryRow(ctx, "SELECT count() FROM "+store.Table("replay_jobs")).Scan(&c))
		return c
	}

	// Refused: a viewer may not create; a target not allow-listed.
	code, _ := call(url, auth.Viewer, "POST", "/api/v1/replay/jobs", `{"kind":"redrive","topic":"`+dlq+`"}`, nil)
	assert.Equal(t, http.StatusForbidden, code)
	code, body := call(url, auth.Operator, "POST", "/api/v1/replay/jobs", `{"kind":"redrive","topic":"`+dlq+`","to":"`+other+`"}`, nil)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, body, "refused: topic "+other+" is not in replay.allow")
	code, body = call(url, auth.Operator, "POST", "/api/v1/replay/jobs", `{"kind":"redrive"}`, nil)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "topic: required for kind redrive")
	assert.Zero(t, jobCount(), "a refused request stores no job")

	// Create: a dry run, the plan comes back, nothing is produced.
	var created JobPlanReport
	code, body = call(url, auth.Operator, "POST", "/api/v1/replay/jobs", `{"kind":"redrive","topic":"`+dlq+`","rate":0}`, &created)
	require.Equal(t, http.StatusCreated, code, body)
	assert.True(t, created.DryRun)
	assert.Equal(t, replay.StatusPlanned, created.Job.Status)
	assert.Equal(t, "dana-operator", created.Job.Actor)
	assert.Equal(t, n, created.Plan.Records)
	assert.Equal(t, map[string]int{target: n}, created.Plan.PerTopic)
	require.Len(t, created.Plan.First, 10)
	assert.Equal(t, replay.Position{Topic: dlq, Partition: 0, Offset: 0}, created.Plan.First[0].From)
	assert.Zero(t, endOffsets(t, brokers, target), "creating a job produces nothing")
	id := created.Job.ID

	var st JobStatus
	code, _ = call(url, auth.Viewer, "GET", "/api/v1/replay/jobs/"+id, "", &st)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, replay.StatusPlanned, st.Job.Status)

	// Confirm: a viewer may not; an operator's runs in the background.
	code, _ = call(url, auth.Viewer, "POST", "/api/v1/replay/jobs/"+id+"/confirm", "", nil)
	assert.Equal(t, http.StatusForbidden, code)
	code, body = call(url, auth.Operator, "POST", "/api/v1/replay/jobs/"+id+"/confirm", "", &st)
	require.Equal(t, http.StatusAccepted, code, body)
	assert.True(t, st.Here)
	waitStatus := func(id, status string) replay.Job {
		t.Helper()
		var j JobStatus
		require.Eventually(t, func() bool {
			call(url, auth.Viewer, "GET", "/api/v1/replay/jobs/"+id, "", &j)
			return j.Job.Status == status && !j.Here
		}, time.Minute, 50*time.Millisecond, "job %s never %s", id, status)
		return j.Job
	}
	j := waitStatus(id, replay.StatusFinished)
	assert.Equal(t, uint64(n), j.Produced)
	byJob := func(id string) map[string]int {
		seqs := map[string]int{}
		for _, r := range kcatRead(t, brokers, target) {
			if r.headers[replay.HeaderJob] == id {
				seqs[r.headers[replay.HeaderSeq]]++
				assert.Equal(t, "dana-operator", r.headers[replay.HeaderOperator])
			}
		}
		return seqs
	}
	seqs := byJob(id)
	assert.Len(t, seqs, n)
	for s, c := range seqs {
		assert.Equal(t, 1, c, "item %s produced once", s)
	}
	code, body = call(url, auth.Operator, "POST", "/api/v1/replay/jobs/"+id+"/confirm", "", nil)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, body, "is finished")

	// Cancel a slow job half way, then confirm it again: it finishes,
	// each record once.
	code, body = call(url, auth.Operator, "POST", "/api/v1/replay/jobs", `{"kind":"redrive","topic":"`+dlq+`","rate":10}`, &created)
	require.Equal(t, http.StatusCreated, code, body)
	slow := created.Job.ID
	code, body = call(url, auth.Operator, "POST", "/api/v1/replay/jobs/"+slow+"/confirm", "", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	require.Eventually(t, func() bool {
		call(url, auth.Viewer, "GET", "/api/v1/replay/jobs/"+slow, "", &st)
		return st.Job.Cursor >= 5
	}, time.Minute, 50*time.Millisecond)
	code, body = call(url, auth.Viewer, "POST", "/api/v1/replay/jobs/"+slow+"/cancel", "", nil)
	assert.Equal(t, http.StatusForbidden, code)
	code, body = call(url, auth.Operator, "POST", "/api/v1/replay/jobs/"+slow+"/cancel", "", &st)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, replay.StatusCancelled, st.Job.Status)
	assert.Less(t, st.Job.Cursor, uint64(n))
	code, body = call(url, auth.Operator, "POST", "/api/v1/replay/jobs/"+slow+"/confirm", `{"rate":0}`, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	waitStatus(slow, replay.StatusFinished)
	seqs = byJob(slow)
	assert.Len(t, seqs, n)
	for s, c := range seqs {
		assert.Equal(t, 1, c, "item %s of the resumed job produced once", s)
	}

	// A job planned under another allow-list (here: stored by hand) is
	// refused at confirmation, and stays planned; so is every job when
	// replay is off.
	now := time.Now().UTC()
	foreign := fmt.Sprintf("rpl-%016x", now.UnixNano())
	require.NoError(t, store.InsertReplayItems(ctx, foreign, []chstore.ReplayItemRow{{Seq: 0, Topic: dlq, Partition: 0, Offset: 0, Target: other}}))
	require.NoError(t, store.InsertReplayJob(ctx, chstore.ReplayJobRow{JobID: foreign, Kind: replay.KindRedrive, Resource: "topic/" + dlq,
		Actor: "someone", CreatedAt: now, UpdatedAt: now, Status: replay.StatusPlanned, Planned: 1, Version: 1}))
	code, body = call(url, auth.Operator, "POST", "/api/v1/replay/jobs/"+foreign+"/confirm", "", nil)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, body, "refused: topic "+other+" is not in replay.allow")
	off := DefaultConfig()
	offSrv := httptest.NewServer(newAPI(nil, store, nil, actions, authn, prometheus.NewRegistry(), zerolog.Nop(), false, nil, newReplayJobs(off, store, actions, zerolog.Nop()), nil))
	defer offSrv.Close()
	code, body = call(offSrv.URL, auth.Operator, "POST", "/api/v1/replay/jobs/"+foreign+"/confirm", "", nil)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, body, "refused: replay is disabled")
	code, body = call(offSrv.URL, auth.Operator, "POST", "/api/v1/replay/jobs", `{"kind":"redrive","topic":"`+dlq+`"}`, nil)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, body, "refused: replay is disabled")
	fj, err := replay.LoadJob(ctx, store, foreign)
	require.NoError(t, err)
	assert.Equal(t, replay.StatusPlanned, fj.Status)
	assert.Zero(t, endOffsets(t, brokers, other), "nothing produced to a topic not allow-listed")

	// Every step is an operator action under the authenticated identity.
	var got []string
	require.NoError(t, store.ActionRows(ctx, "", func(r chstore.ActionRow) error {
		if r.Actor == "dana-operator" && (r.Verb == "redrive" || r.Verb == "replay") {
			phase, _, _ := strings.Cut(r.Detail, " job ")
			if r.Outcome == "denied" {
				phase = "denied"
			}
			got = append(got, phase)
		}
		return nil
	}))
	assert.Equal(t, []string{"denied", "requested", "started", "finished", "denied", "requested", "started", "cancel", "cancelled", "resumed", "finished", "denied", "denied", "denied"}, got)

	stop()
	require.NoError(t, <-ran)
}
