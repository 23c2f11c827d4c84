package embedch

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/weft-sh/weft/internal/testenv"
)

// EnvTestTarball names a local copy of the pinned tarball for the tests to
// fill an empty cache from instead of downloading it. The cache is the
// default one, so the download happens once per machine either way.
const EnvTestTarball = "WEFT_EMBEDCH_TARBALL"

// Start must report a child that dies at once, with the end of its log.
func TestStartReportsEarlyExit(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	bogus := filepath.Join(dir, "libchdb.so")
	if err := os.WriteFile(bogus, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{LibPath: bogus, DataDir: filepath.Join(dir, "data")})
	if err == nil {
		t.Fatal("Start succeeded with a bogus library")
	}
	want := "load ClickHouse engine"
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		want = "linux/amd64 only"
	}
	if !strings.Contains(err.Error(), "exited during startup") || !strings.Contains(err.Error(), want) {
		t.Fatalf("error lacks the child's story:\n%v", err)
	}
}

func TestStartRespectsContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	lib := filepath.Join(dir, "libchdb.so")
	if err := os.WriteFile(lib, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begun := time.Now()
	// A child that never listens stands in for the engine.
	_, err := Start(ctx, Options{LibPath: lib, DataDir: dir, Command: []string{"sh", "-c", "sleep 30"}})
	if err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(begun); d > 5*time.Second {
		t.Fatalf("Start took %v after its context ended", d)
	}
}

func TestServer(t *testing.T) {
	lib := fetchForTest(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	logger := zerolog.New(zerolog.NewTestWriter(t))

	begun := time.Now()
	s, err := Start(ctx, Options{LibPath: lib, DataDir: dataDir, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("started in %v: native %s, http %s, pid %d", time.Since(begun), s.Addr(), s.HTTPAddr(), s.PID())
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) }) // if a check below fails
	if _, port, _ := net.SplitHostPort(s.Addr()); !strings.HasPrefix(s.Addr(), "127.0.0.1:") || port == "0" {
		t.Fatalf("Addr() = %s", s.Addr())
	}

	conn := connect(t, s)
	if v, err := conn.ServerVersion(); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("server version %s", v)
	}
	must(t, conn.Exec(ctx, `CREATE TABLE items (id UInt64, name String) ENGINE = MergeTree ORDER BY id`))
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO items")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		must(t, batch.Append(uint64(i), "item-"+strconv.Itoa(i)))
	}
	must(t, batch.Send())
	checkRows(ctx, t, conn)
	must(t, conn.Close())
	t.Logf("idle child RSS: %s", rss(s.PID()))

	// A second server on the same data directory must fail, not corrupt it.
	if _, err := Start(ctx, Options{LibPath: lib, DataDir: dataDir}); err == nil {
		t.Error("a second server started on a data directory in use")
	} else {
		t.Logf("second server on the same data directory: %v", firstLine(err))
	}

	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done() open after Shutdown")
	}
	if err := s.Wait(); err != nil {
		t.Fatalf("Wait() after Shutdown = %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}

	// Restart on the same data: the rows are still there.
	s2, err := Start(ctx, Options{LibPath: lib, DataDir: dataDir, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	conn = connect(t, s2)
	checkRows(ctx, t, conn)
	must(t, conn.Close())
	if err := s2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}

	// A native port in use fails Start, in ClickHouse's words.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Start(ctx, Options{LibPath: lib, DataDir: dataDir, TCPPort: l.Addr().(*net.TCPAddr).Port})
	if err == nil || !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("Start on a taken port: %v", err)
	}
}

// fetchForTest returns the pinned library from the default cache, filling
// it from $WEFT_EMBEDCH_TARBALL or else from the npm registry. A test that
// needs it starts a real ClickHouse: it is skipped under -short and off
// linux/amd64.
func fetchForTest(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real ClickHouse (needs the 178 MB engine tarball)")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the engine library is linux/amd64 only")
	}
	o := FetchOptions{}
	if p := os.Getenv(EnvTestTarball); p != "" {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, p) }))
		defer srv.Close()
		o.RegistryURL = srv.URL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	begun := time.Now()
	lib, err := Fetch(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("engine %s (fetched in %v)", lib, time.Since(begun))
	return lib
}

func connect(t *testing.T, s *Server) clickhouse.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func checkRows(ctx context.Context, t *testing.T, conn clickhouse.Conn) {
	t.Helper()
	var n, sum uint64
	must(t, conn.QueryRow(ctx, `SELECT count(), sum(id) FROM items`).Scan(&n, &sum))
	if n != 1000 || sum != 999*1000/2 {
		t.Fatalf("count %d, sum %d; want 1000 rows summing to 499500", n, sum)
	}
	var name string
	must(t, conn.QueryRow(ctx, `SELECT name FROM items WHERE id = 42`).Scan(&name))
	if name != "item-42" {
		t.Fatalf("row 42 name = %q", name)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:"))
		}
	}
	return "?"
}

func firstLine(err error) string { return strings.SplitN(err.Error(), "\n", 2)[0] }

// TestSupervise: the supervisor restarts a server that dies on the same
// data and address, says so in one line, and gives up after
// MaxQuickFailures deaths in a row within MinUptime, with an error naming
// the last exit and the log.
func TestSupervise(t *testing.T) {
	lib := fetchForTest(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	var logs testenv.LogBuffer
	s, err := Supervise(ctx, SuperviseOptions{
		Options:          Options{LibPath: lib, DataDir: dataDir, Logger: zerolog.New(&logs)},
		MaxQuickFailures: 2, MinUptime: time.Hour, Backoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background()) //nolint:errcheck // if a check below fails
	addr := s.Addr()
	conn := connect(t, s.current())
	must(t, conn.Exec(ctx, `CREATE TABLE items (id UInt64, name String) ENGINE = MergeTree ORDER BY id`))
	must(t, conn.Exec(ctx, `INSERT INTO items SELECT number, concat('item-', toString(number)) FROM numbers(1000)`))
	must(t, conn.Close())

	for i := 1; i <= 2; i++ {
		pid := s.PID()
		must(t, syscall.Kill(pid, syscall.SIGKILL))
		deadline := time.Now().Add(time.Minute)
		for s.Restarts() < i {
			if time.Now().After(deadline) {
				t.Fatalf("not restarted after kill %d; log:\n%s", i, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if s.PID() == pid || s.Addr() != addr {
			t.Fatalf("restart %d: pid %d (was %d), addr %s (was %s)", i, s.PID(), pid, s.Addr(), addr)
		}
		conn := connect(t, s.current())
		checkRows(ctx, t, conn) // the same data
		must(t, conn.Close())
	}
	if n := strings.Count(logs.String(), `"message":"embedded ClickHouse died (signal: killed); restarting it"`); n != 2 {
		t.Fatalf("%d lines for 2 deaths; log:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `"log":"`+filepath.Join(dataDir, ServerLogName)+`"`) {
		t.Fatalf("the death's line does not name the log:\n%s", logs.String())
	}

	// The third quick death is one too many.
	must(t, syscall.Kill(s.PID(), syscall.SIGKILL))
	select {
	case <-s.Done():
	case <-time.After(time.Minute):
		t.Fatalf("did not give up; log:\n%s", logs.String())
	}
	err = s.Err()
	if err == nil || !strings.Contains(err.Error(), "died 3 times in a row within 1h0m0s") || !strings.Contains(err.Error(), "signal: killed") ||
		!strings.Contains(err.Error(), filepath.Join(dataDir, ServerLogName)) {
		t.Fatalf("Err() = %v", err)
	}
	if err := s.Shutdown(context.Background()); err == nil {
		t.Fatal("Shutdown after giving up returned nil")
	}
}

// TestClientReset: a client that resets its native connection — closes
// it with SO_LINGER 0, as a killed client's kernel may — does not take the
// server down. Without the guard in front of the native port the engine
// aborted on every such reset of an idle connection (std::terminate on
// "Connection reset by peer"); several resets, idle and mid-insert, here.
func TestClientReset(t *testing.T) {
	lib := fetchForTest(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{LibPath: lib, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background()) //nolint:errcheck // checked below
	conn := connect(t, s)
	must(t, conn.Exec(ctx, `CREATE TABLE items (id UInt64, name String) ENGINE = MergeTree ORDER BY id`))
	must(t, conn.Close())

	// nativeConnections asks over HTTP how many native connections the
	// engine holds.
	nativeConnections := func() int {
		resp, err := http.Get("http://" + s.HTTPAddr() + "/?query=" + url.QueryEscape("SELECT value FROM system.metrics WHERE metric = 'TCPConnection'"))
		if err != nil {
			t.Fatalf("the server does not answer: %v; log:\n%s", err, s.logTail())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("the server answers %q (a reset took it down?)", b)
		}
		return n
	}
	for i, midInsert := range []bool{false, true, false} {
		var raw *net.TCPConn
		c, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.Addr()}, DialContext: func(ctx context.Context, addr string) (net.Conn, error) {
			d, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err == nil {
				raw = d.(*net.TCPConn)
			}
			return d, err
		}})
		must(t, err)
		var n uint64
		must(t, c.QueryRow(ctx, `SELECT count() FROM items`).Scan(&n))
		if midInsert {
			b, err := c.PrepareBatch(ctx, "INSERT INTO items")
			must(t, err)
			must(t, b.Append(uint64(i), "x"))
		}
		must(t, raw.SetLinger(0))
		must(t, raw.Close()) // a reset
		deadline := time.Now().Add(30 * time.Second)
		for nativeConnections() != 0 { // the server is done with it
			if time.Now().After(deadline) {
				t.Fatalf("reset %d: the connection is still open on the server", i)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = c.Close()
	}
	select {
	case <-s.Done():
		t.Fatalf("the server died: %v", s.Wait())
	default:
	}
	conn = connect(t, s)
	must(t, conn.Ping(ctx))
	must(t, conn.Close())
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
