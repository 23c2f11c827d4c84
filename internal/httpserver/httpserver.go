// Package httpserver serves weft's HTTP endpoints as a component.Component:
// it listens at Start, so a busy port fails start-up, and stops serving
// gracefully when Run's context ends.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server is an HTTP server with the component lifecycle.
type Server struct {
	addr    string
	handler http.Handler
	// drain bounds how long Run waits for requests in flight once its
	// context ended.
	drain time.Duration

	srv      *http.Server
	ln       net.Listener
	closeErr error
	once     sync.Once
}

// New builds a server for handler on addr (host:port). It does no I/O.
func New(addr string, handler http.Handler) *Server {
	return &Server{addr: addr, handler: handler, drain: 5 * time.Second}
}

// Start listens on the address.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", s.addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	return nil
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
	go func() { served <- s.srv.Serve(s.ln) }()
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
