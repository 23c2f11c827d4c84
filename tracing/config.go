package tracing

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/weft-sh/weft/internal/config"
)

// Config is the tracing block of weft.yaml.
type Config struct {
	// TraceBy is what a trace is of: "order" (default), every event of an
	// order in one trace; or "correlation_id", every event with a
	// correlation id in the trace of that id (orders sharing a checkout or
	// a session share a trace), events without one in their order's.
	TraceBy string `yaml:"trace_by"`
	// Enabled runs the Tracer in `weft run`: each stored event's span is
	// exported once, a second or so after the tap stored it. Default false.
	Enabled bool `yaml:"enabled"`
	// IDKeyFile holds the key of the hash that derives trace and span ids
	// from order and event ids (at least 16 bytes; `weft dev` makes one), so
	// an id cannot be traced back to an order id by hashing guesses. The
	// same key gives the same ids in `weft run` and `weft trace`. Required
	// when enabled, and by `weft trace`.
	IDKeyFile string `yaml:"id_key_file"`
	// Endpoint is where spans are exported: for http/protobuf the OTLP/HTTP
	// traces URL, e.g. http://127.0.0.1:4318/v1/traces; for grpc the
	// receiver's address as a URL, http://127.0.0.1:4317 (plaintext) or
	// https://collector:4317 (TLS, the system's roots). An OpenTelemetry
	// Collector, Jaeger, Tempo. Default "": no OTLP export.
	Endpoint string `yaml:"endpoint"`
	// TLS configures the connection to an https:// endpoint (an https://
	// endpoint is TLS, an http:// one is not; tls set with an http://
	// endpoint is refused).
	TLS TLS `yaml:"tls"`
	// Protocol is http/protobuf or grpc (OTEL_EXPORTER_OTLP_PROTOCOL's
	// names). Default http/protobuf.
	Protocol string `yaml:"protocol"`
	// Headers are added to every export request (gRPC metadata for grpc):
	// an API key, a tenant. Default none.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one export request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// QueueSpans bounds the spans waiting for the endpoint; while it is
	// full (a receiver down for long) new spans are dropped and counted in
	// weft_tracing_spans_total{outcome="dropped"}: the tap never waits.
	// Default 50000.
	QueueSpans int `yaml:"queue_spans"`
	// RetryFor is how long one request is retried on 429, 502, 503, 504 or
	// a network error before its spans are dropped (counted as failed).
	// Never retried: any other answer (a 400 means the spans are bad).
	// Default 5m.
	RetryFor time.Duration `yaml:"retry_for"`
	// Sampling chooses which orders' traces go to the endpoint.
	Sampling Sampling `yaml:"sampling"`
	// ClickHouse also stores every span (sampled or not) in otel_traces,
	// the OpenTelemetry Collector ClickHouse exporter's schema, for the
	// Grafana ClickHouse data source's trace view. Default false; `weft
	// dev` turns it on.
	ClickHouse bool `yaml:"clickhouse"`
	// Interval is how often the Tracer looks for newly stored events.
	// Default 1s.
	Interval time.Duration `yaml:"interval"`
	// BacklogInterval spaces the Tracer's passes while the tap is catching
	// up on a backlog: ingest keeps the CPU, and the spans follow once it
	// caught up (weft_tracing_lag_seconds says how far behind they are).
	// 0 or at most interval: no effect. Default 1m.
	BacklogInterval time.Duration `yaml:"backlog_interval"`
}

// TLS is the client side of an https:// OTLP endpoint.
type TLS struct {
	// CAFile is a PEM bundle of the CAs to trust instead of the system's
	// roots. Default "": the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// a receiver that requires one (mutual TLS). Default none.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the receiver's certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify turns certificate checks off. For tests only.
	// Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// client is t as the shared TLS client configuration, on.
func (t TLS) client() config.TLS {
	return config.TLS{Enabled: true, CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify}
}

// Sampling is head sampling by trace id, so all of an order's spans are
// either exported or not, in every weft process.
type Sampling struct {
	// Ratio is the share of orders exported over OTLP, 0 to 1, decided
	// from the trace id as OpenTelemetry's TraceIdRatioBased sampler does.
	// Default 1 (every order).
	Ratio *float64 `yaml:"ratio"`
	// Findings also exports every order the detector opens a finding on,
	// sampled or not: its spans stored so far at once (the latest marked
	// with the finding), its later spans as they come. Default true.
	Findings *bool `yaml:"findings"`
}

// What a trace is of (Config.TraceBy).
const (
	TraceByOrder       = "order"
	TraceByCorrelation = "correlation_id"
)

// Builder is the span builder for c, its ids derived under key.
func (c Config) Builder(key []byte, group string) Builder {
	return Builder{IDs: NewIDs(key), Group: group, ByCorrelation: c.TraceBy == TraceByCorrelation}
}

// Protocols of the OTLP export.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

func (c Config) protocol() string {
	if c.Protocol == "" {
		return ProtocolHTTP
	}
	return c.Protocol
}

// findings is Sampling.Findings with its default.
func (c Config) findings() bool { return c.Sampling.Findings == nil || *c.Sampling.Findings }

// Default is tracing off.
func Default() Config {
	return Config{Timeout: 10 * time.Second, QueueSpans: 50000, RetryFor: 5 * time.Minute, Interval: time.Second,
		BacklogInterval: time.Minute}
}

// ratio is the sampling ratio with its default.
func (c Config) ratio() float64 {
	if c.Sampling.Ratio == nil {
		return 1
	}
	return *c.Sampling.Ratio
}

// Validate reports every problem with its key.
func (c Config) Validate() error {
	var p config.Problems
	if c.Enabled && c.IDKeyFile == "" {
		p.Addf("id_key_file", "required when tracing is enabled (a file of at least 16 random bytes)")
	}
	if c.Enabled && c.Endpoint == "" && !c.ClickHouse {
		p.Addf("endpoint", "tracing is enabled but spans go nowhere: set endpoint, clickhouse, or both")
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Addf("endpoint", "%q is not an http(s) URL (e.g. http://127.0.0.1:4318/v1/traces)", c.Endpoint)
		}
	}
	if c.TLS != (TLS{}) {
		if u, err := url.Parse(c.Endpoint); err == nil && u.Scheme != "https" {
			p.Addf("tls", "is set but endpoint %q is not https://", c.Endpoint)
		}
		p.Merge("tls", c.TLS.client().Validate())
	}
	switch c.TraceBy {
	case "", TraceByOrder, TraceByCorrelation:
	default:
		p.Addf("trace_by", "%q is not order or correlation_id", c.TraceBy)
	}
	switch c.Protocol {
	case "", ProtocolHTTP, ProtocolGRPC:
	default:
		p.Addf("protocol", "%q is not http/protobuf or grpc", c.Protocol)
	}
	for k := range c.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") || http.CanonicalHeaderKey(k) == "Content-Type" {
			p.Addf("headers", "%q is not a header weft may set", k)
		}
	}
	if c.Timeout <= 0 {
		p.Addf("timeout", "must be positive, got %s", c.Timeout)
	}
	if c.QueueSpans < 1 {
		p.Addf("queue_spans", "must be at least 1, got %d", c.QueueSpans)
	}
	if c.RetryFor < 0 {
		p.Addf("retry_for", "must not be negative, got %s", c.RetryFor)
	}
	if r := c.ratio(); r < 0 || r > 1 {
		p.Addf("sampling.ratio", "must be between 0 and 1, got %g", r)
	}
	if c.Interval <= 0 {
		p.Addf("interval", "must be positive, got %s", c.Interval)
	}
	if c.BacklogInterval < 0 {
		p.Addf("backlog_interval", "must not be negative, got %s", c.BacklogInterval)
	}
	return p.Err()
}

// tlsConfig is the TLS client configuration of an https:// endpoint (nil
// for http://).
func (c Config) tlsConfig() (*tls.Config, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Scheme != "https" {
		return nil, err
	}
	tc, err := c.TLS.client().Build()
	if err != nil {
		return nil, fmt.Errorf("tracing.tls: %w", err)
	}
	return tc, nil
}

// minKey is the least id key length, in bytes.
const minKey = 16

// ReadIDKey reads the id key file (whitespace around it trimmed).
func ReadIDKey(path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("tracing.id_key_file is not set: trace ids are derived with a key (docs/tracing.md)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tracing.id_key_file: %w", err)
	}
	key := []byte(strings.TrimSpace(string(b)))
	if len(key) < minKey {
		return nil, fmt.Errorf("tracing.id_key_file: %s holds %d bytes, at least %d needed", path, len(key), minKey)
	}
	return key, nil
}
