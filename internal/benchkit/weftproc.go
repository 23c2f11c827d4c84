package benchkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weft-sh/weft/auditor"
)

// BuildWeft builds the weft command into dir and returns its path.
func BuildWeft(ctx context.Context, dir string) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build weft: %w", err)
	}
	bin := filepath.Join(dir, "weft")
	out, err := exec.CommandContext(ctx, gobin, "build", "-o", bin, "github.com/weft-sh/weft/cmd/weft").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build weft: %w\n%s", err, out)
	}
	return bin, nil
}

// WeftConfig is what StartWeft needs to run `weft run` against the bench
// servers.
type WeftConfig struct {
	// Bin is the weft binary (BuildWeft).
	Bin string
	// Dir receives weft.yaml and weft.log.
	Dir        string
	Brokers    []string
	ClickHouse []string
	// Database and Group are fresh per run, so every run reads everything.
	Database string
	Group    string
	// Topics are the exact topic names tapped.
	Topics []string
	// TapOnly turns off what `weft run` does besides the tap: the detector
	// (consistency.interval 24h: one pass at start, on an empty database)
	// and the queue-health monitor (collector.lag.enabled false).
	TapOnly bool
	// Audit turns the audit trail on (audit.enabled), with a signing key
	// and a source key generated into Dir.
	Audit bool
	// Tracing turns the Tracer on (tracing.enabled) with every span stored
	// in ClickHouse (tracing.clickhouse, as `make run` does) and no OTLP
	// endpoint, an id key generated into Dir (docs/tracing.md).
	Tracing bool
}

// freePort returns a 127.0.0.1 address nothing listens on right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Weft is `weft run` running as a child process: the real binary with its
// defaults (the detector and everything else `weft run` starts), so its
// peak RSS is what an operator would see.
type Weft struct {
	cmd  *exec.Cmd
	log  *os.File
	exit chan error
	http string // its /metrics address
}

// StartWeft writes a config (only the servers, database, group, topics, a
// quiet log and, with TapOnly, the detector and queue-health monitor
// changed from the defaults) and starts `weft run` with it.
func StartWeft(c WeftConfig) (*Weft, error) {
	include := make([]string, len(c.Topics))
	for i, t := range c.Topics {
		include[i] = regexp.QuoteMeta(t)
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := map[string]any{
		"log":        map[string]any{"level": "warn", "format": "json"},
		"http":       map[string]any{"listen": addr},
		"kafka":      map[string]any{"brokers": c.Brokers},
		"clickhouse": map[string]any{"addr": c.ClickHouse, "database": c.Database},
		"collector":  map[string]any{"group": c.Group, "topics": map[string]any{"include": include}},
	}
	if c.TapOnly {
		cfg["consistency"] = map[string]any{"interval": "24h"}
		cfg["collector"].(map[string]any)["lag"] = map[string]any{"enabled": false}
	}
	if c.Audit {
		a, err := auditKeys(c.Dir, c.Database)
		if err != nil {
			return nil, err
		}
		cfg["audit"] = a
	}
	if c.Tracing {
		key, err := tracingKey(c.Dir)
		if err != nil {
			return nil, err
		}
		cfg["tracing"] = map[string]any{"enabled": true, "id_key_file": key, "clickhouse": true}
	}
	body, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(c.Dir, "weft.yaml")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(c.Dir, "weft.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Bin, "run", "--config", path)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start weft: %w", err)
	}
	w := &Weft{cmd: cmd, log: log, exit: make(chan error, 1), http: addr}
	go func() { w.exit <- cmd.Wait() }()
	return w, nil
}

// Exited returns the process's exit error if it already stopped.
func (w *Weft) Exited() (error, bool) {
	select {
	case err := <-w.exit:
		w.exit <- err
		if err == nil {
			err = errors.New("exited")
		}
		return err, true
	default:
		return nil, false
	}
}

// PeakRSS is the process's high-water resident set size (VmHWM), in bytes.
func (w *Weft) PeakRSS() (int64, error) { return vmHWM(w.cmd.Process.Pid) }

// vmHWM is process pid's high-water resident set size, in bytes.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// CPU is the user+system CPU time the process used so far.
func (w *Weft) CPU() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", w.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesized command name; utime and stime are
	// fields 14 and 15 of the whole line, in clock ticks (100 per second
	// on Linux).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// InsertTime reads weft's /metrics: the total time spent in ClickHouse
// batch inserts and their number.
func (w *Weft) InsertTime() (time.Duration, int, error) {
	resp, err := http.Get("http://" + w.http + "/metrics")
	if err != nil {
		return 0, 0, fmt.Errorf("weft metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, fmt.Errorf("weft metrics: %w", err)
	}
	var sum float64
	var count int
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "weft_collector_insert_duration_seconds_sum "); ok {
			sum, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
		if v, ok := strings.CutPrefix(line, "weft_collector_insert_duration_seconds_count "); ok {
			count, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return time.Duration(sum * float64(time.Second)), count, nil
}

// Stop sends SIGTERM and waits for a clean exit (SIGKILL after 30s).
func (w *Weft) Stop() error {
	defer w.log.Close()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-w.exit:
		w.exit <- err
		return err
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		return errors.New("weft did not stop within 30s of SIGTERM; killed")
	}
}

// LogTail returns the end of the child's log, for error messages.
func (w *Weft) LogTail() string {
	b, _ := os.ReadFile(w.log.Name())
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Alive reports an error, with the end of the log, once the process exited.
func (w *Weft) Alive() error {
	if err, ok := w.Exited(); ok {
		return fmt.Errorf("weft exited: %v\n%s", err, w.LogTail())
	}
	return nil
}

// tracingKey writes a random tracing id key into dir and returns its path.
func tracingKey(dir string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "tracing-id.key")
	if err := os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("tracing id key: %w", err)
	}
	return path, nil
}

// auditKeys writes a signing key and a source key into dir and returns the
// audit block that uses them, checkpoints copied to dir/checkpoints/<db>:
// a sink of its own for each run's database, or verify rightly reports the
// checkpoints of an earlier run (signed with its key, not in this
// database) as tampering.
func auditKeys(dir, db string) (map[string]any, error) {
	skey, _, err := auditor.GenerateKey("weft-bench")
	if err != nil {
		return nil, err
	}
	signing, source := filepath.Join(dir, "audit-signing.key"), filepath.Join(dir, "audit-source.key")
	if err := os.WriteFile(signing, []byte(skey+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(source, []byte(auditor.GenerateSourceKey()+"\n"), 0o600); err != nil {
		return nil, err
	}
	return map[string]any{"enabled": true, "cluster_id": "bench", "signing_key_file": signing, "source_key_file": source,
		"checkpoint": map[string]any{"dir": filepath.Join(dir, "checkpoints", db)}}, nil
}
