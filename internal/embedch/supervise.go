package embedch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Supervisor keeps an embedded ClickHouse running: when the child process
// dies, it logs one line saying how and where its logs are, and starts
// another on the same data directory and ports, after a backoff. Clients
// see an outage of a few seconds, as of any ClickHouse restart. After
// MaxQuickFailures deaths or failed restarts in a row, each within
// MinUptime of its start, it gives up: Done closes and Err says why.
type Supervisor struct {
	o SuperviseOptions

	mu       sync.Mutex
	cur      *Server
	restarts int

	stop     chan struct{} // closed by Shutdown
	stopOnce sync.Once
	done     chan struct{} // closed when run returns
	err      error         // why it gave up; set before done closes
}

// SuperviseOptions configures Supervise.
type SuperviseOptions struct {
	Options
	// MaxQuickFailures is how many times in a row the server may die, or
	// fail to restart, within MinUptime of its start before the supervisor
	// gives up. Default 5.
	MaxQuickFailures int
	// MinUptime is how long a run must last to reset the count of quick
	// failures and the backoff. Default 1 minute.
	MinUptime time.Duration
	// Backoff is the wait before the first restart, doubled after each
	// quick failure up to MaxBackoff. Defaults 1 s and 30 s.
	Backoff, MaxBackoff time.Duration
}

// Supervise starts the server as Start does and keeps it running until
// Shutdown. The first start's error is returned as is: a server that
// cannot start at all is not retried. Ports picked for the first start
// (0 in Options) are kept for the restarts, so clients reconnect to the
// same address.
func Supervise(ctx context.Context, o SuperviseOptions) (*Supervisor, error) {
	if o.MaxQuickFailures <= 0 {
		o.MaxQuickFailures = 5
	}
	if o.MinUptime <= 0 {
		o.MinUptime = time.Minute
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = max(30*time.Second, o.Backoff)
	}
	o.supervised = true
	srv, err := Start(ctx, o.Options)
	if err != nil {
		return nil, err
	}
	o.TCPPort, o.HTTPPort = srv.tcpPort, srv.httpPort
	o.DataDir, o.LogFile = srv.dataDir, srv.logFile
	s := &Supervisor{o: o, cur: srv, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s, nil
}

func (s *Supervisor) run() {
	defer close(s.done)
	log := s.o.Logger.With().Str("component", "embedded-clickhouse").Logger()
	quick := 0 // quick failures in a row
	backoff := s.o.Backoff
	srv := s.current()
	for {
		select {
		case <-srv.Done():
		case <-s.stop:
			return
		}
		if s.stopping() {
			return
		}
		up := srv.Uptime()
		if up >= s.o.MinUptime {
			quick, backoff = 0, s.o.Backoff
		}
		quick++
		crash := srv.Crash()
		ev := log.Error().Str("exit", crash.Exit).Int("pid", srv.PID()).Str("uptime", up.Round(time.Millisecond).String())
		if crash.Reason != "" {
			ev = ev.Str("reason", crash.Reason)
		}
		if crash.Stderr != "" {
			ev = ev.Str("stderr", crash.Stderr)
		}
		ev = ev.Str("log", srv.ServerLog())
		if quick > s.o.MaxQuickFailures {
			ev.Msgf("embedded ClickHouse died (%s) %d times in a row within %s of starting; giving up", crash.Exit, quick, s.o.MinUptime)
			s.err = fmt.Errorf("embedch: ClickHouse died %d times in a row within %s of starting, last: %s%s; see %s",
				quick, s.o.MinUptime, crash.Exit, reasonSuffix(crash.Reason), srv.ServerLog())
			return
		}
		ev.Str("restart_in", backoff.String()).Msgf("embedded ClickHouse died (%s); restarting it", crash.Exit)

		// Restart, with the backoff between attempts, until one comes up or
		// the failures in a row run out.
		for {
			select {
			case <-time.After(backoff):
			case <-s.stop:
				return
			}
			backoff = min(2*backoff, s.o.MaxBackoff)
			next, err := s.restart()
			if err == nil {
				srv = next
				s.mu.Lock()
				s.restarts++
				n := s.restarts
				s.mu.Unlock()
				log.Warn().Int("pid", next.PID()).Int("restarts", n).Str("addr", next.Addr()).
					Msg("embedded ClickHouse is back")
				break
			}
			if s.stopping() {
				return
			}
			quick++
			if quick > s.o.MaxQuickFailures {
				log.Error().Err(err).Msgf("embedded ClickHouse failed to restart %d times in a row; giving up", quick)
				s.err = fmt.Errorf("embedch: ClickHouse died and failed to restart %d times in a row, last: %w", quick, err)
				return
			}
			log.Error().Str("error", firstLineOf(err)).Str("restart_in", backoff.String()).Str("log", s.o.LogFile).
				Msg("embedded ClickHouse failed to restart; trying again")
		}
	}
}

// restart starts a server like the first, unless Shutdown began; a server
// started while Shutdown began is stopped again.
func (s *Supervisor) restart() (*Server, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	o := s.o.Options
	o.restart = true
	srv, err := Start(ctx, o)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping() {
		_ = srv.Shutdown(context.Background())
		return nil, errors.New("embedch: shutting down")
	}
	s.cur = srv
	return srv, nil
}

func (s *Supervisor) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

func (s *Supervisor) current() *Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Addr is the native protocol address, "127.0.0.1:port", the same across
// restarts.
func (s *Supervisor) Addr() string { return s.current().Addr() }

// HTTPAddr is the HTTP interface's address, the same across restarts.
func (s *Supervisor) HTTPAddr() string { return s.current().HTTPAddr() }

// DataDir is the absolute data directory.
func (s *Supervisor) DataDir() string { return s.o.DataDir }

// LogFile receives the child processes' stdout and stderr.
func (s *Supervisor) LogFile() string { return s.o.LogFile }

// ServerLog is ClickHouse's own log.
func (s *Supervisor) ServerLog() string { return s.current().ServerLog() }

// PID is the current child's process id (it changes with each restart).
func (s *Supervisor) PID() int { return s.current().PID() }

// Restarts is how many times the server was restarted.
func (s *Supervisor) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// Done is closed when the supervisor gave up or was shut down.
func (s *Supervisor) Done() <-chan struct{} { return s.done }

// Err says why the supervisor gave up; nil while it runs and after
// Shutdown.
func (s *Supervisor) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Shutdown stops supervising and stops the server as Server.Shutdown does.
// It returns the supervisor's error if it had already given up.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	// A child that died as Shutdown began has nothing more to report.
	_ = s.current().Shutdown(ctx)
	return s.err
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}
