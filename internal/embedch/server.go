package embedch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/rs/zerolog"
)

const (
	startTimeout = 60 * time.Second
	// stopGrace is how long Shutdown waits after SIGTERM before SIGKILL.
	stopGrace = 10 * time.Second
	// DefaultLogName is the child's log file in the data directory.
	DefaultLogName = "clickhouse-embedded.log"
)

// Options configures Start.
type Options struct {
	// LibPath is the engine library, as returned by Fetch. Required.
	LibPath string
	// DataDir holds the databases, kept from one start to the next, and the
	// child's log. Created if missing. Required. One server per DataDir.
	DataDir string
	// TCPPort (native protocol) and HTTPPort on 127.0.0.1; 0 picks a free port.
	TCPPort, HTTPPort int
	// Logger receives weft's own messages about the server; the zero value
	// logs nothing.
	Logger zerolog.Logger
	// LogFile receives the child's stdout and stderr, appended. Empty means
	// DataDir/clickhouse-embedded.log.
	LogFile string
	// LogLevel of ClickHouse's own log, DataDir/clickhouse-server.log (see
	// ServeOptions). Empty means DefaultLogLevel.
	LogLevel string
	// Cluster makes the server one shard of a cluster of embedded servers
	// (ServeOptions.Cluster); its TCPPort must be fixed and among the
	// cluster's shards.
	Cluster    Cluster
	supervised bool // a Supervisor reports the child's death
	restart    bool // a Supervisor's restart: it says when the server is back

	// Command is the child's argv before ChildArgs. Empty means
	// {os.Executable(), ChildCommand}: weft serves that hidden subcommand, and
	// other binaries (tests) call ChildMain. ChildEnv=1 is always set.
	Command []string
}

// Server is a running embedded ClickHouse child process.
type Server struct {
	cmd      *exec.Cmd
	addr     string
	httpAddr string
	tcpPort  int
	httpPort int
	dataDir  string
	logFile  string
	logStart int64 // offset of this run in logFile
	errStart int64 // offset of this run in the server's error log
	began    time.Time
	log      zerolog.Logger
	o        Options

	done    chan struct{} // closed once the child is reaped
	exitErr error         // cmd.Wait's result, set before done closes
	exited  time.Time     // when it was reaped, set before done closes

	ready    atomic.Bool // startup succeeded: an exit from now on is news
	stopped  atomic.Bool // Shutdown or a failed start stops the child: its exit is expected
	stopOnce sync.Once
	stopErr  error
}

// Start spawns the server in a child process, in its own process group and
// (on Linux) killed if weft dies, and returns once its native port answers
// a ping, or fails after 60 s or when ctx ends; ctx bounds the startup only,
// the server runs until Shutdown. If the child exits first, the error carries
// the end of its log. When a port was picked here and turns out to be taken
// by the time the child binds it, Start retries with others.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.LibPath == "" || o.DataDir == "" {
		return nil, errors.New("embedch: Start needs LibPath and DataDir")
	}
	lib, err := filepath.Abs(o.LibPath)
	if err != nil {
		return nil, fmt.Errorf("embedch: %w", err)
	}
	if _, err := os.Stat(lib); err != nil {
		return nil, fmt.Errorf("embedch: ClickHouse engine: %w", err)
	}
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("embedch: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("embedch: %w", err)
	}
	o.LibPath, o.DataDir = lib, dataDir
	if o.LogFile == "" {
		o.LogFile = filepath.Join(dataDir, DefaultLogName)
	}
	if len(o.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("embedch: %w", err)
		}
		o.Command = []string{exe, ChildCommand}
	}

	for attempt := 1; ; attempt++ {
		tcp, http, err := ports(o.TCPPort, o.HTTPPort)
		if err != nil {
			return nil, err
		}
		s, err := start(ctx, o, tcp, http)
		picked := o.TCPPort == 0 || o.HTTPPort == 0
		if err != nil && picked && attempt < 3 && strings.Contains(err.Error(), "Address already in use") {
			o.Logger.Debug().Err(err).Msg("embedded ClickHouse lost a race for its port, retrying")
			continue
		}
		return s, err
	}
}

func start(ctx context.Context, o Options, tcpPort, httpPort int) (*Server, error) {
	begun := time.Now()
	logf, err := os.OpenFile(o.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("embedch: child log: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	logStart, _ := logf.Seek(0, io.SeekEnd)
	var errStart int64
	if fi, err := os.Stat(filepath.Join(o.DataDir, ServerErrorLogName)); err == nil {
		errStart = fi.Size()
	}
	fmt.Fprintf(logf, "--- weft: starting embedded ClickHouse at %s (native %s:%d, http %s:%d)\n",
		begun.Format(time.RFC3339), ListenHost, tcpPort, ListenHost, httpPort)

	so := ServeOptions{Path: o.DataDir, TCPPort: tcpPort, HTTPPort: httpPort, LogLevel: o.LogLevel, Cluster: o.Cluster}
	cmd := exec.Command(o.Command[0], append(o.Command[1:len(o.Command):len(o.Command)], ChildArgs(o.LibPath, so)...)...)
	cmd.Dir = o.DataDir // whatever the engine writes relative to its cwd lands here
	// LIBC_FATAL_STDERR_: glibc writes its fatal messages ("free(): invalid
	// pointer", "buffer overflow detected") to stderr, so to the log, rather
	// than to the terminal the child may share with weft.
	cmd.Env = append(os.Environ(), ChildEnv+"=1", "LIBC_FATAL_STDERR_=1")
	cmd.Stdout, cmd.Stderr = logf, logf // *os.File: the child writes directly, no copying goroutines
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("embedch: start %s: %w", o.Command[0], err)
	}
	s := &Server{
		cmd:      cmd,
		addr:     net.JoinHostPort(ListenHost, strconv.Itoa(tcpPort)),
		httpAddr: net.JoinHostPort(ListenHost, strconv.Itoa(httpPort)),
		tcpPort:  tcpPort,
		httpPort: httpPort,
		dataDir:  o.DataDir,
		logFile:  o.LogFile,
		logStart: logStart,
		errStart: errStart,
		began:    begun,
		o:        o,
		log:      o.Logger.With().Str("component", "embedded-clickhouse").Int("pid", cmd.Process.Pid).Logger(),
		done:     make(chan struct{}),
	}
	go s.reap()

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := s.waitReady(ctx); err != nil {
		s.stopped.Store(true)
		s.kill()
		<-s.done
		return nil, err
	}
	s.ready.Store(true)
	up := s.log.Info()
	if o.restart {
		up = s.log.Debug()
	}
	up.Str("addr", s.addr).Str("http", s.httpAddr).Str("data_dir", s.dataDir).
		Str("log", s.logFile).Dur("startup", time.Since(begun)).Msg("embedded ClickHouse is up")
	return s, nil
}

func (s *Server) reap() {
	err := s.cmd.Wait()
	s.exitErr, s.exited = err, time.Now()
	close(s.done)
	if s.ready.Load() && !s.stopped.Load() && !s.o.supervised {
		c := s.Crash()
		s.log.Error().Str("exit", c.Exit).Str("reason", c.Reason).Str("stderr", c.Stderr).
			Str("log", s.ServerLog()).Msg("embedded ClickHouse exited")
	}
}

// waitReady polls until the server answers a native ping and HTTP /ping.
func (s *Server) waitReady(ctx context.Context) error {
	var last error
	for {
		if last = s.ping(ctx); last == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("embedch: ClickHouse exited during startup (%v); log %s ends:\n%s", s.exitErr, s.logFile, s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("embedch: ClickHouse not ready (%w; last ping: %v); log %s ends:\n%s", ctx.Err(), last, s.logFile, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.addr}, DialTimeout: time.Second})
	if err != nil {
		return err
	}
	err = conn.Ping(ctx)
	_ = conn.Close()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.httpAddr+"/ping", nil)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // no proxy for loopback, no idle goroutines
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "Ok." {
		return fmt.Errorf("http ping: %s %q", resp.Status, body)
	}
	return nil
}

// Addr is the native protocol address, "127.0.0.1:port".
func (s *Server) Addr() string { return s.addr }

// HTTPAddr is the HTTP interface's address, "127.0.0.1:port".
func (s *Server) HTTPAddr() string { return s.httpAddr }

// DataDir is the absolute data directory.
func (s *Server) DataDir() string { return s.dataDir }

// LogFile is the file receiving the child's output.
func (s *Server) LogFile() string { return s.logFile }

// PID is the child's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Done is closed when the child has exited, for whatever reason.
func (s *Server) Done() <-chan struct{} { return s.done }

// Wait blocks until the child exits. It returns nil after Shutdown, and
// otherwise an error carrying the exit status and the end of the log.
func (s *Server) Wait() error {
	<-s.done
	if s.stopped.Load() {
		return nil
	}
	c := s.Crash()
	return fmt.Errorf("embedch: ClickHouse exited unexpectedly (%s)%s; its log: %s; its output (%s) ends:\n%s",
		c.Exit, reasonSuffix(c.Reason), s.ServerLog(), s.logFile, s.logTail())
}

// Shutdown stops the server: SIGTERM to its process group, then SIGKILL if
// it has not exited within 10 s or when ctx ends, and waits for it to exit.
// Data written before is kept in DataDir. It is safe to call more than once
// and concurrently; later calls wait for and return the first one's result.
// The error is nil unless the child had already died on its own.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		select {
		case <-s.done: // died by itself; Wait's error says how
			s.stopErr = s.Wait()
			s.stopped.Store(true)
			return
		default:
		}
		s.stopped.Store(true)
		s.signal(syscall.SIGTERM)
		grace := time.NewTimer(stopGrace)
		defer grace.Stop()
		select {
		case <-s.done:
		case <-grace.C:
			s.log.Warn().Msg("embedded ClickHouse ignored SIGTERM, killing it")
			s.kill()
		case <-ctx.Done():
			s.kill()
		}
		<-s.done
		s.log.Info().Msg("embedded ClickHouse stopped")
	})
	return s.stopErr
}

func (s *Server) kill() { s.signal(syscall.SIGKILL) }

// signal signals the child's process group while the child is unreaped (so
// the group id cannot have been reused).
func (s *Server) signal(sig syscall.Signal) {
	select {
	case <-s.done:
	default:
		signalGroup(s.cmd.Process, sig)
	}
}

// logTail returns the last lines the child wrote during this run.
func (s *Server) logTail() string {
	const maxBytes, maxLines = 8 << 10, 30
	f, err := os.Open(s.logFile)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	from := max(s.logStart, end-maxBytes)
	buf := make([]byte, end-from)
	n, _ := f.ReadAt(buf, from)
	lines := bytes.Split(bytes.TrimRight(buf[:n], "\n"), []byte("\n"))
	if from > s.logStart && len(lines) > 1 {
		lines = lines[1:] // a partial first line
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// ports returns the ports asked for, picking free ones for zeros.
func ports(tcp, http int) (int, int, error) {
	var hold []net.Listener // keep both open so the two picks differ
	defer func() {
		for _, l := range hold {
			_ = l.Close()
		}
	}()
	pick := func(p int) (int, error) {
		if p != 0 {
			return p, nil
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ListenHost, "0"))
		if err != nil {
			return 0, fmt.Errorf("embedch: pick a free port: %w", err)
		}
		hold = append(hold, l)
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	tcp, err := pick(tcp)
	if err != nil {
		return 0, 0, err
	}
	http, err = pick(http)
	return tcp, http, err
}
