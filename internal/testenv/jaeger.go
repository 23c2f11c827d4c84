package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// JaegerVersion is the Jaeger v2 that scripts/jaeger.sh builds (tools/jaeger).
const JaegerVersion = "v1.75.0"

// EnvJaeger names the Jaeger binary (`make test` sets it from scripts/jaeger.sh).
const EnvJaeger = "WEFT_JAEGER"

// JaegerBinary finds the Jaeger binary scripts/jaeger.sh built, and fails
// (never skips) when there is none: `make test` builds it first.
func JaegerBinary(t testing.TB) string {
	t.Helper()
	Integration(t)
	if p := os.Getenv(EnvJaeger); p != "" {
		return p
	}
	cache := os.Getenv("WEFT_CACHE_DIR")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "weft")
	}
	p := filepath.Join(cache, "jaeger-"+JaegerVersion, "jaeger")
	if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("Jaeger %s not found at %s: run scripts/jaeger.sh (make test does), or set %s", JaegerVersion, p, EnvJaeger)
	}
	return p
}

// JaegerServer is a running Jaeger v2.
type JaegerServer struct {
	// OTLPHTTP is its OTLP/HTTP traces URL, OTLPGRPC its OTLP/gRPC address
	// (host:port), Query its query API's base URL.
	OTLPHTTP, OTLPGRPC, Query string
}

func freeLoopbackPort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Jaeger runs a real Jaeger v2 with memory storage, its OTLP receivers
// (HTTP and gRPC) and query API on free ports of 127.0.0.1, until the test
// ends; its log is printed when the test failed.
func Jaeger(t testing.TB) JaegerServer {
	t.Helper()
	bin := JaegerBinary(t)
	httpPort, grpcPort, queryPort, queryGRPCPort := freeLoopbackPort(t), freeLoopbackPort(t), freeLoopbackPort(t), freeLoopbackPort(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
      grpc:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`, queryPort, queryGRPCPort, httpPort, grpcPort)
	path := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "jaeger.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start jaeger: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("jaeger log:\n%s", b)
		}
	})
	j := JaegerServer{OTLPHTTP: fmt.Sprintf("http://127.0.0.1:%d/v1/traces", httpPort), OTLPGRPC: fmt.Sprintf("127.0.0.1:%d", grpcPort),
		Query: fmt.Sprintf("http://127.0.0.1:%d", queryPort)}
	require.Eventually(t, func() bool {
		resp, err := http.Get(j.Query + "/api/v3/services")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 90*time.Second, 200*time.Millisecond, "jaeger's query API answers (log: %s)", logf.Name())
	return j
}

// JaegerTrace reads a trace back through Jaeger's query API v3, raw (no
// adjusters); an empty trace while Jaeger has none.
func JaegerTrace(t testing.TB, query, traceID string) ptrace.Traces {
	t.Helper()
	resp, err := http.Get(query + "/api/v3/traces/" + traceID + "?raw_traces=true")
	if err != nil {
		t.Fatalf("jaeger query: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return ptrace.NewTraces()
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jaeger query %s: %d %s", traceID, resp.StatusCode, body)
	}
	var wrap struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &wrap); err != nil {
		t.Fatalf("jaeger answer %s: %v", body, err)
	}
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(wrap.Result)
	if err != nil {
		t.Fatalf("jaeger trace %s: %v", wrap.Result, err)
	}
	return td
}
