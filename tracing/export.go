package tracing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Exporter posts traces to an OTLP/HTTP endpoint as protobuf, from a
// bounded queue: Enqueue never blocks (a full queue drops and counts), one
// goroutine sends, retrying only what a receiver says to retry.
type Exporter struct {
	url      string
	timeout  time.Duration
	grpc     ptraceotlp.GRPCClient // nil: OTLP/HTTP
	conn     *grpc.ClientConn
	headers  map[string]string
	client   *http.Client
	retryFor time.Duration
	clock    clockwork.Clock
	log      zerolog.Logger
	m        metrics

	queue    chan ptrace.Traces
	capacity int64
	queued   atomic.Int64 // spans in queue and in flight
}

// newExporter builds the exporter; it connects nothing yet (a gRPC
// connection is made on the first export).
func newExporter(cfg Config, client *http.Client, clock clockwork.Clock, log zerolog.Logger, m metrics) (*Exporter, error) {
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlsCfg
		client = &http.Client{Timeout: cfg.Timeout, Transport: tr}
	}
	x := &Exporter{url: cfg.Endpoint, timeout: cfg.Timeout, headers: cfg.Headers, client: client, retryFor: cfg.RetryFor, clock: clock,
		log: log, m: m, queue: make(chan ptrace.Traces, 1024), capacity: int64(cfg.QueueSpans)}
	if cfg.protocol() == ProtocolGRPC {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("tracing.endpoint: %w", err)
		}
		creds := insecure.NewCredentials()
		if tlsCfg != nil {
			creds = credentials.NewTLS(tlsCfg)
		}
		x.conn, err = grpc.NewClient(u.Host, grpc.WithTransportCredentials(creds))
		if err != nil {
			return nil, fmt.Errorf("tracing.endpoint: %w", err)
		}
		x.grpc = ptraceotlp.NewGRPCClient(x.conn)
	}
	return x, nil
}

// close releases the gRPC connection.
func (x *Exporter) close() error {
	if x.conn == nil {
		return nil
	}
	err := x.conn.Close()
	x.conn = nil
	return err
}

// Enqueue hands td to the sender, or drops it (counted) when its spans do
// not fit in the queue. It never blocks.
func (x *Exporter) Enqueue(td ptrace.Traces) bool {
	n := int64(td.SpanCount())
	if n == 0 {
		return true
	}
	if x.queued.Add(n) > x.capacity {
		x.queued.Add(-n)
		x.m.spans.WithLabelValues(OutcomeDropped).Add(float64(n))
		return false
	}
	select {
	case x.queue <- td:
		x.m.queued.Set(float64(x.queued.Load()))
		return true
	default:
		x.queued.Add(-n)
		x.m.spans.WithLabelValues(OutcomeDropped).Add(float64(n))
		return false
	}
}

// Run sends the queue until ctx ends, then what is left once, without
// retries, for up to drain.
func (x *Exporter) Run(ctx context.Context, drain time.Duration) {
	for {
		select {
		case td := <-x.queue:
			x.sendRetrying(ctx, td)
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
			defer cancel()
			for {
				select {
				case td := <-x.queue:
					if dctx.Err() != nil {
						x.done(td, OutcomeDropped)
						continue
					}
					if _, err := x.send(dctx, td); err != nil {
						x.done(td, OutcomeFailed)
					}
				default:
					return
				}
			}
		}
	}
}

func (x *Exporter) done(td ptrace.Traces, outcome string) {
	n := td.SpanCount()
	x.queued.Add(-int64(n))
	x.m.queued.Set(float64(x.queued.Load()))
	x.m.spans.WithLabelValues(outcome).Add(float64(n))
}

// retryable is an answer that asks to be tried again (the OTLP spec's
// retryable HTTP statuses and gRPC codes).
type retryable struct {
	status string
	after  time.Duration
}

func (r retryable) Error() string { return "endpoint answered " + r.status }

func (x *Exporter) sendRetrying(ctx context.Context, td ptrace.Traces) {
	start := x.clock.Now()
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		_, err := x.send(ctx, td)
		if err == nil {
			return
		}
		var r retryable
		var netErr bool
		if !errors.As(err, &r) {
			var perm permanent
			if errors.As(err, &perm) {
				x.log.Warn().Err(err).Int("spans", td.SpanCount()).Msg("trace export refused; spans dropped")
				x.done(td, OutcomeFailed)
				return
			}
			netErr = true
		}
		wait := backoff
		if r.after > 0 {
			wait = r.after
		}
		if ctx.Err() != nil || x.clock.Since(start)+wait > x.retryFor {
			x.log.Warn().Err(err).Int("attempts", attempt).Int("spans", td.SpanCount()).Msg("trace export failed; spans dropped")
			x.done(td, OutcomeFailed)
			return
		}
		if attempt == 1 {
			x.log.Warn().Err(err).Bool("network", netErr).Dur("retry_in", wait).Msg("trace export failed; retrying")
		}
		select {
		case <-ctx.Done():
			x.done(td, OutcomeFailed)
			return
		case <-x.clock.After(wait):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// permanent is an answer not to retry (a 400: the spans are bad).
type permanent struct {
	status string
	body   string
}

func (p permanent) Error() string {
	return fmt.Sprintf("endpoint answered %s: %s", p.status, p.body)
}

// send posts td once; on success it counts the spans exported and those a
// partial success rejected.
func (x *Exporter) send(ctx context.Context, td ptrace.Traces) (rejected int64, err error) {
	if x.grpc != nil {
		return x.sendGRPC(ctx, td)
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return 0, permanent{body: "marshal: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.url, bytes.NewReader(body))
	if err != nil {
		return 0, permanent{body: err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "weft")
	for k, v := range x.headers {
		req.Header.Set(k, v)
	}
	resp, err := x.client.Do(req)
	if err != nil {
		x.m.requests.WithLabelValues("error").Inc()
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	x.m.requests.WithLabelValues(strconv.Itoa(resp.StatusCode)).Inc()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		er := ptraceotlp.NewExportResponse()
		if len(raw) > 0 && resp.Header.Get("Content-Type") == "application/x-protobuf" {
			_ = er.UnmarshalProto(raw) // an unreadable body still means accepted
		}
		return x.accepted(td, er), nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusBadGateway ||
		resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout:
		r := retryable{status: strconv.Itoa(resp.StatusCode)}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			r.after = time.Duration(s) * time.Second
		}
		return 0, r
	default:
		b := string(raw)
		if len(b) > 200 {
			b = b[:200]
		}
		return 0, permanent{status: strconv.Itoa(resp.StatusCode), body: b}
	}
}

// accepted counts an accepted export: its spans exported but those a
// partial success rejected.
func (x *Exporter) accepted(td ptrace.Traces, er ptraceotlp.ExportResponse) int64 {
	rejected := er.PartialSuccess().RejectedSpans()
	n := int64(td.SpanCount())
	rejected = min(max(rejected, 0), n)
	x.queued.Add(-n)
	x.m.queued.Set(float64(x.queued.Load()))
	x.m.spans.WithLabelValues(OutcomeExported).Add(float64(n - rejected))
	x.m.spans.WithLabelValues(OutcomeRejected).Add(float64(rejected))
	if rejected > 0 {
		x.log.Warn().Int64("rejected", rejected).Str("message", er.PartialSuccess().ErrorMessage()).Msg("trace export partly rejected")
	}
	return rejected
}

// sendGRPC exports td once over OTLP/gRPC, the headers as metadata.
func (x *Exporter) sendGRPC(ctx context.Context, td ptrace.Traces) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, x.timeout)
	defer cancel()
	if len(x.headers) > 0 {
		md := metadata.MD{}
		for k, v := range x.headers {
			md.Set(k, v)
		}
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	resp, err := x.grpc.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	st := status.Convert(err)
	x.m.requests.WithLabelValues("grpc " + st.Code().String()).Inc()
	switch st.Code() {
	case codes.OK:
		return x.accepted(td, resp), nil
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.OutOfRange, codes.DataLoss,
		codes.Canceled, codes.DeadlineExceeded:
		return 0, retryable{status: st.Code().String() + ": " + st.Message()}
	default:
		return 0, permanent{status: st.Code().String(), body: st.Message()}
	}
}
