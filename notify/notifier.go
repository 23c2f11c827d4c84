package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/component"
)

var _ component.Component = (*Notifier)(nil)

// Settings is what the wiring passes in.
type Settings struct {
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
	// Clock paces min_interval and the retries' backoff; nil is the real
	// clock. Tests pass a fake one.
	Clock clockwork.Clock
	// Client posts the messages; nil is a client of its own (each attempt
	// bounded by the webhook's timeout).
	Client *http.Client
}

// queueSize bounds the notifications a webhook holds while it waits or
// retries; more are dropped and counted.
const queueSize = 10000

// seenLimit is how many findings' last event Notify remembers before it
// forgets the resolved ones an hour old.
const seenLimit = 100000

// Notifier sends findings' opens and resolves to webhooks. It is a
// component: New, Start, Run, Shutdown.
type Notifier struct {
	linkURL string
	hooks   []*hook
	clock   clockwork.Clock
	client  *http.Client
	log     zerolog.Logger
	m       metrics

	mu   sync.Mutex
	seen map[string]seenEvent // by finding id: the last event queued
}

type seenEvent struct {
	event string
	at    time.Time
}

type hook struct {
	w     Webhook
	url   string
	kinds map[string]bool // nil: all
	queue chan Notification
}

// New validates cfg and builds the notifier. It does no I/O; a URL read
// from the environment (url_env) must be set.
func New(cfg Config, set Settings) (*Notifier, error) {
	if err := cfg.Validate(consistency.Kinds); err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	n := &Notifier{linkURL: cfg.LinkURL, clock: set.Clock, client: set.Client,
		log: set.Logger.With().Str("component", "notify").Logger(), m: newMetrics(set.Registerer), seen: map[string]seenEvent{}}
	if n.clock == nil {
		n.clock = clockwork.NewRealClock()
	}
	if n.client == nil {
		n.client = &http.Client{}
	}
	for _, w := range cfg.Webhooks {
		w = w.withDefaults()
		u, err := w.resolveURL()
		if err != nil {
			return nil, fmt.Errorf("alerts: %w", err)
		}
		if u == "" {
			n.log.Warn().Str("webhook", w.Name).Str("url_env", w.URLEnv).Msg("webhook off: its URL variable is empty")
			continue
		}
		h := &hook{w: w, url: u, queue: make(chan Notification, queueSize)}
		if len(w.Kinds) > 0 {
			h.kinds = map[string]bool{}
			for _, k := range w.Kinds {
				h.kinds[k] = true
			}
		}
		n.hooks = append(n.hooks, h)
		n.m.init(w.Name)
	}
	return n, nil
}

// Enabled reports whether any webhook is configured.
func (n *Notifier) Enabled() bool { return len(n.hooks) > 0 }

// Start does nothing: a webhook is not called until there is something to
// say.
func (n *Notifier) Start(context.Context) error { return nil }

// Shutdown does nothing; Run sends what it holds before it returns.
func (n *Notifier) Shutdown(context.Context) error { return nil }

// Run sends each webhook's queue until ctx ends, then sends what is left
// once, without retries.
func (n *Notifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, h := range n.hooks {
		wg.Go(func() { n.send(ctx, h) })
	}
	wg.Wait()
	return nil
}

// Notify queues the findings that opened (status open) or resolved (status
// resolved); it never blocks. A finding's event is queued once: the same
// open (or resolve) again is a duplicate, counted and dropped.
func (n *Notifier) Notify(fs []consistency.Finding) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.clock.Now()
	if len(n.seen) > seenLimit {
		for id, s := range n.seen {
			if s.event == EventResolved && now.Sub(s.at) > time.Hour {
				delete(n.seen, id)
			}
		}
	}
	for _, f := range fs {
		var event string
		switch f.Status {
		case consistency.StatusOpen:
			event = EventOpened
		case consistency.StatusResolved:
			event = EventResolved
		default:
			continue
		}
		if s, ok := n.seen[f.ID]; ok && s.event == event {
			n.m.duplicates.Inc()
			continue
		}
		n.seen[f.ID] = seenEvent{event, now}
		nt := Notification{Event: event, Finding: f, Links: links(n.linkURL, f.OrderID)}
		for _, h := range n.hooks {
			if h.kinds != nil && !h.kinds[f.Kind] {
				continue
			}
			select {
			case h.queue <- nt:
			default:
				n.m.findings.WithLabelValues(h.w.Name, "dropped").Inc()
			}
		}
	}
}

// send is one webhook's loop: a message at most every min_interval, with
// what queued meanwhile.
func (n *Notifier) send(ctx context.Context, h *hook) {
	var last time.Time
	for {
		var batch []Notification
		select {
		case <-ctx.Done():
			n.flush(ctx, h)
			return
		case nt := <-h.queue:
			batch = append(batch, nt)
		}
		if wait := h.w.MinInterval - n.clock.Since(last); !last.IsZero() && wait > 0 {
			select {
			case <-ctx.Done():
				n.flush(ctx, h, batch...)
				return
			case <-n.clock.After(wait):
			}
		}
		batch = drain(h.queue, batch)
		n.deliver(ctx, h, batch, h.w.Retries)
		last = n.clock.Now()
	}
}

// drain adds what waits in q to batch, up to maxPerMessage.
func drain(q chan Notification, batch []Notification) []Notification {
	for len(batch) < maxPerMessage {
		select {
		case nt := <-q:
			batch = append(batch, nt)
		default:
			return batch
		}
	}
	return batch
}

// flush sends what h holds once ctx ended: one attempt per message.
func (n *Notifier) flush(ctx context.Context, h *hook, batch ...Notification) {
	ctx = context.WithoutCancel(ctx)
	for {
		batch = drain(h.queue, batch)
		if len(batch) == 0 {
			return
		}
		n.deliver(ctx, h, batch, 0)
		batch = nil
	}
}

// deliver posts batch, retrying up to retries times with backoff when the
// failure may pass.
func (n *Notifier) deliver(ctx context.Context, h *hook, batch []Notification, retries int) {
	b, err := body(h.w.Format, batch)
	if err != nil {
		n.log.Error().Err(err).Str("webhook", h.w.Name).Msg("encode notification")
		n.counted(h, batch, "failed")
		return
	}
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		retry, err := n.post(ctx, h, b)
		if err == nil {
			n.counted(h, batch, "sent")
			return
		}
		if !retry || attempt >= retries {
			n.log.Warn().Err(err).Str("webhook", h.w.Name).Int("findings", len(batch)).Int("attempts", attempt+1).Msg("notification not sent")
			n.counted(h, batch, "failed")
			return
		}
		n.m.retries.WithLabelValues(h.w.Name).Inc()
		select {
		case <-ctx.Done():
			n.counted(h, batch, "failed")
			return
		case <-n.clock.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

func (n *Notifier) counted(h *hook, batch []Notification, outcome string) {
	n.m.messages.WithLabelValues(h.w.Name, outcome).Inc()
	n.m.findings.WithLabelValues(h.w.Name, outcome).Add(float64(len(batch)))
}

// errStatus is a receiver's answer other than 2xx.
type errStatus struct{ code int }

func (e errStatus) Error() string { return fmt.Sprintf("webhook answered %d", e.code) }

// post makes one attempt; retry says whether another may succeed (a 5xx
// or 429 answer, a network error, a timeout).
func (n *Notifier) post(ctx context.Context, h *hook, b []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, h.w.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(b))
	if err != nil {
		return false, fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "weft")
	resp, err := n.client.Do(req)
	if err != nil {
		// The URL may be a secret: say what failed, not where.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return true, fmt.Errorf("webhook post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, errStatus{resp.StatusCode}
}
