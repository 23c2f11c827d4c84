// Package httpserver serves weft's HTTP endpoints as a component.Component:
// it listens at Start, so a busy port (or a certificate that does not
// load) fails start-up, serves HTTPS when TLS is configured, and stops
// serving gracefully when Run's context ends.
package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Settings are what the wiring passes in.
type Settings struct {
	// TLS, when enabled, makes the server serve HTTPS.
	TLS TLS
	// Logger receives certificate reloads, failures to reload and
	// net/http's errors (failed TLS handshakes).
	Logger zerolog.Logger
	// Now is the clock of the certificate files' checks. Default time.Now.
	Now func() time.Time
}

// Server is an HTTP server with the component lifecycle.
type Server struct {
	addr    string
	handler http.Handler
	s       Settings
	// drain bounds how long Run waits for requests in flight once its
	// context ended.
	drain time.Duration

	srv      *http.Server
	ln       net.Listener
	closeErr error
	once     sync.Once
}

// New builds a server for handler on addr (host:port). It does no I/O.
func New(addr string, handler http.Handler, s Settings) *Server {
	if s.Now == nil {
		s.Now = time.Now
	}
	return &Server{addr: addr, handler: handler, s: s, drain: 5 * time.Second}
}

// Start loads the certificate, when TLS is on, and listens on the
// address.
func (s *Server) Start(context.Context) error {
	// net/http's own complaints (a failed TLS handshake, a panic in a
	// handler) go to weft's log, not to stderr as plain text.
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: stdlog.New(warnWriter{s.s.Logger}, "", 0)}
	if s.s.TLS.Enabled() {
		certs, err := newCertReloader(s.s.TLS, s.s.Now, s.s.Logger)
		if err != nil {
			return err
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", s.addr, err)
	}
	s.ln, s.srv = ln, srv
	return nil
}

// URL is the server's base URL (https:// when TLS is on), once started.
func (s *Server) URL() string {
	if s.s.TLS.Enabled() {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

// warnWriter logs each line written to it at warn.
type warnWriter struct{ log zerolog.Logger }

func (w warnWriter) Write(p []byte) (int, error) {
	w.log.Warn().Str("source", "net/http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Addr is the address the server listens on, once started.
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.addr
	}
	return s.ln.Addr().String()
}

// Run serves until ctx ends, then lets requests in flight finish (for a
// few seconds at most) and returns nil. A failure to serve is returned.
func (s *Server) Run(ctx context.Context) error {
	if s.srv == nil {
		return errors.New("http server: Run before Start")
	}
	served := make(chan error, 1)
	go func() {
		if s.srv.TLSConfig != nil {
			served <- s.srv.ServeTLS(s.ln, "", "")
			return
		}
		served <- s.srv.Serve(s.ln)
	}()
	select {
	case err := <-served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("http serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.drain)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	<-served
	if err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// Shutdown closes the listener and every connection. Safe to call more
// than once, or without Run.
func (s *Server) Shutdown(context.Context) error {
	s.once.Do(func() {
		if s.srv != nil {
			s.closeErr = s.srv.Close()
		} else if s.ln != nil {
			s.closeErr = s.ln.Close()
		}
	})
	return s.closeErr
}
