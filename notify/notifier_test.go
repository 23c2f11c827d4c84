package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weft-sh/weft/consistency"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// receiver is an httptest server that answers each request with the next
// status of statuses (200 once they run out) and hands the bodies to the
// test.
type receiver struct {
	*httptest.Server
	bodies   chan []byte
	requests atomic.Int32
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{bodies: make(chan []byte, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		i := int(r.requests.Add(1)) - 1
		b, _ := io.ReadAll(req.Body)
		if i < len(statuses) {
			w.WriteHeader(statuses[i])
			return
		}
		r.bodies <- b
	}))
	t.Cleanup(r.Close)
	return r
}

// next is the next message the receiver accepted.
func (r *receiver) next(t *testing.T) jsonMessage {
	t.Helper()
	select {
	case b := <-r.bodies:
		var m jsonMessage
		require.NoError(t, json.Unmarshal(b, &m), string(b))
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message reached the receiver")
		return jsonMessage{}
	}
}

func stuck(id, status string) consistency.Finding {
	return consistency.Finding{ID: id, Kind: consistency.KindStuck, OrderID: "ord-" + id, Workflow: "bopis", Step: "payment_authorized",
		Reason: consistency.ReasonNotDelivered, Status: status, Summary: "fulfillment-svc has not read payments/0@9 yet",
		Evidence: json.RawMessage(`{"why":{"reason":"not-delivered"}}`)}
}

// start runs a notifier with one webhook on a fake clock until the test ends.
func start(t *testing.T, w Webhook, reg prometheus.Registerer) (*Notifier, *clockwork.FakeClock) {
	t.Helper()
	clock := clockwork.NewFakeClock()
	n, err := New(Config{Webhooks: []Webhook{w}, LinkURL: "https://weft.example/"},
		Settings{Logger: zerolog.Nop(), Registerer: reg, Clock: clock})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return n, clock
}

// advance waits until the notifier waits on the clock, then moves it on.
func advance(t *testing.T, clock *clockwork.FakeClock, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, clock.BlockUntilContext(ctx, 1), "the notifier never waited")
	clock.Advance(d)
}

// eventually waits for counter c to reach want: the receiver has a body
// before the notifier has its answer.
func eventually(t *testing.T, want float64, c prometheus.Collector) {
	t.Helper()
	require.Eventually(t, func() bool { return testutil.ToFloat64(c) == want }, 10*time.Second, time.Millisecond)
}

// TestOneMessagePerOpenAndResolve: an open and a resolve are a message
// each, carrying the finding's evidence and links; the same open or resolve
// again sends nothing.
func TestOneMessagePerOpenAndResolve(t *testing.T) {
	r := newReceiver(t)
	reg := prometheus.NewRegistry()
	n, clock := start(t, Webhook{Name: "ops", URL: r.URL, MinInterval: time.Minute}, reg)

	n.Notify([]consistency.Finding{stuck("a", consistency.StatusOpen)})
	m := r.next(t)
	require.Len(t, m.Notifications, 1)
	got := m.Notifications[0]
	assert.Equal(t, "weft", m.Source)
	assert.Equal(t, EventOpened, got.Event)
	assert.Equal(t, "ord-a", got.Finding.OrderID)
	assert.Equal(t, consistency.ReasonNotDelivered, got.Finding.Reason)
	assert.JSONEq(t, `{"why":{"reason":"not-delivered"}}`, string(got.Finding.Evidence))
	assert.Equal(t, "https://weft.example/api/v1/orders/ord-a", got.Links.Order)

	// The same open again (a pass that saw it twice, a second detector).
	n.Notify([]consistency.Finding{stuck("a", consistency.StatusOpen), stuck("a", consistency.StatusOpen)})
	n.Notify([]consistency.Finding{stuck("a", consistency.StatusResolved)})
	advance(t, clock, time.Minute) // min_interval since the first message
	m = r.next(t)
	require.Len(t, m.Notifications, 1, "the duplicate opens were sent")
	assert.Equal(t, EventResolved, m.Notifications[0].Event)

	// A duplicate resolve, then another finding: the next message is that
	// finding alone.
	n.Notify([]consistency.Finding{stuck("a", consistency.StatusResolved)})
	n.Notify([]consistency.Finding{stuck("b", consistency.StatusOpen)})
	advance(t, clock, time.Minute)
	m = r.next(t)
	require.Len(t, m.Notifications, 1)
	assert.Equal(t, "ord-b", m.Notifications[0].Finding.OrderID)
	assert.EqualValues(t, 3, r.requests.Load())
	eventually(t, 3, n.m.messages.WithLabelValues("ops", "sent"))
	assert.Equal(t, 3.0, testutil.ToFloat64(n.m.duplicates))

	// Reopened after it resolved: a new open.
	n.Notify([]consistency.Finding{stuck("a", consistency.StatusOpen)})
	advance(t, clock, time.Minute)
	assert.Equal(t, EventOpened, r.next(t).Notifications[0].Event)
}

// TestRateLimited: what opens while the webhook waits out min_interval
// goes in one message.
func TestRateLimited(t *testing.T) {
	r := newReceiver(t)
	n, clock := start(t, Webhook{Name: "ops", URL: r.URL, MinInterval: time.Minute}, nil)
	n.Notify([]consistency.Finding{stuck("a", consistency.StatusOpen)})
	require.Len(t, r.next(t).Notifications, 1)
	for _, id := range []string{"b", "c", "d"} {
		n.Notify([]consistency.Finding{stuck(id, consistency.StatusOpen)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, clock.BlockUntilContext(ctx, 1))
	clock.Advance(59 * time.Second)
	select {
	case <-r.bodies:
		t.Fatal("a message before min_interval passed")
	case <-time.After(50 * time.Millisecond):
	}
	clock.Advance(time.Second)
	assert.Len(t, r.next(t).Notifications, 3)
	assert.EqualValues(t, 2, r.requests.Load())
}

// TestRetriesOn5xx: 503 and 500 are retried after 1s then 2s; the message
// is sent once it is accepted.
func TestRetriesOn5xx(t *testing.T) {
	r := newReceiver(t, http.StatusServiceUnavailable, http.StatusInternalServerError)
	n, clock := start(t, Webhook{Name: "ops", URL: r.URL}, nil)
	n.Notify([]consistency.Finding{stuck("a", consistency.StatusOpen)})
	advance(t, clock, time.Second)
	advance(t, clock, 2*time.Second)
	assert.Len(t, r.next(t).Notifications, 1)
	assert.EqualValues(t, 3, r.requests.Load())
	assert.Equal(t, 2.0, testutil.ToFloat64(n.m.retries.WithLabelValues("ops")))
	eventually(t, 1, n.m.messages.WithLabelValues("ops", "sent"))
}

// TestNoRetryOn4xx: a 400 will not pass; it is counted failed at once, and
// the next message goes.
func TestNoRetryOn4xx(t *testing.T) {
	r := newReceiver(t, http.StatusBadRequest)
	n, clock := start(t, Webhook{Name: "ops", URL: r.URL}, nil)
	n.Notify([]consistency.Finding{stuck("a", consistency.StatusOpen)})
	eventually(t, 1, n.m.messages.WithLabelValues("ops", "failed"))
	n.Notify([]consistency.Finding{stuck("b", consistency.StatusOpen)})
	advance(t, clock, time.Second) // min_interval after the refused message
	m := r.next(t)
	assert.Equal(t, "ord-b", m.Notifications[0].Finding.OrderID)
	assert.EqualValues(t, 2, r.requests.Load())
	assert.Zero(t, testutil.ToFloat64(n.m.retries.WithLabelValues("ops")))
}

// TestRetriesOnTimeout: a receiver slower than the timeout is tried again.
func TestRetriesOnTimeout(t *testing.T) {
	var slow atomic.Bool
	slow.Store(true)
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if slow.Swap(false) {
			<-req.Context().Done() // the client gave up
			return
		}
		got <- b
	}))
	t.Cleanup(srv.Close) // after the notifier stopped
	n, clock := start(t, Webhook{Name: "ops", URL: srv.URL, Timeout: 100 * time.Millisecond}, nil)
	n.Notify([]consistency.Finding{stuck("a", consistency.StatusOpen)})
	advance(t, clock, time.Second)
	select {
	case b := <-got:
		assert.Contains(t, string(b), "ord-a")
	case <-time.After(10 * time.Second):
		t.Fatal("not retried after the timeout")
	}
	assert.Equal(t, 1.0, testutil.ToFloat64(n.m.retries.WithLabelValues("ops")))
}

// TestSlackFormatAndKinds: the slack format is one text line per finding
// with its reason and links; a webhook sends only its kinds.
func TestSlackFormatAndKinds(t *testing.T) {
	got := make(chan []byte, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		got <- b
	}))
	t.Cleanup(srv.Close)
	n, _ := start(t, Webhook{Name: "slack", URL: srv.URL, Format: FormatSlack, Kinds: []string{consistency.KindStuck}}, nil)
	gap := consistency.Finding{ID: "g", Kind: consistency.KindGap, OrderID: "ord-g", Status: consistency.StatusOpen}
	f := stuck("a", consistency.StatusOpen)
	f.Summary = "waiting on <fulfillment> & co"
	n.Notify([]consistency.Finding{gap, f})
	var m struct{ Text string }
	select {
	case b := <-got:
		require.NoError(t, json.Unmarshal(b, &m))
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	assert.Equal(t, ":red_circle: *stuck opened*: order `ord-a` (bopis / payment_authorized) — *not-delivered*\n"+
		"> waiting on &lt;fulfillment&gt; &amp; co <https://weft.example/api/v1/orders/ord-a|order> · "+
		"<https://weft.example/api/v1/findings?status=all&order=ord-a|findings>", m.Text)
	assert.NotContains(t, m.Text, "ord-g")
}

func TestConfigValidate(t *testing.T) {
	t.Setenv("WEFT_TEST_HOOK", "")
	c := Config{LinkURL: "weft.example", Webhooks: []Webhook{
		{Name: "a", URL: "ftp://x"},
		{Name: "a", URLEnv: "X", URL: "https://x"},
		{Name: "Bad name", Format: "xml", Kinds: []string{"stuk"}, Retries: -1},
	}}
	err := c.Validate(consistency.Kinds)
	require.Error(t, err)
	for _, want := range []string{"link_url", "webhooks[0].url", "webhooks[1].name", "webhooks[1].url: set url or url_env",
		"webhooks[2].name", "webhooks[2].url: required", "webhooks[2].format", `webhooks[2].kinds: "stuk"`, "must not be negative"} {
		assert.Contains(t, err.Error(), want)
	}
	n, err := New(Config{Webhooks: []Webhook{{Name: "s", URLEnv: "WEFT_TEST_HOOK"}}}, Settings{})
	require.NoError(t, err)
	assert.False(t, n.Enabled(), "a webhook whose URL variable is empty is off")
	t.Setenv("WEFT_TEST_HOOK", "https://hooks.example/secret")
	n, err = New(Config{Webhooks: []Webhook{{Name: "s", URLEnv: "WEFT_TEST_HOOK"}}}, Settings{})
	require.NoError(t, err)
	assert.Equal(t, "https://hooks.example/secret", n.hooks[0].url)
	t.Setenv("WEFT_TEST_HOOK", "hooks.example/secret")
	_, err = New(Config{Webhooks: []Webhook{{Name: "s", URLEnv: "WEFT_TEST_HOOK"}}}, Settings{})
	require.Error(t, err)
	assert.False(t, strings.Contains(err.Error(), "secret"), "the secret URL is in the error: %v", err)
}
