package embedch

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
)

// The engine aborts when a client resets a native-protocol connection
// while the connection waits for its next query: the reset's exception
// escapes the connection's thread and ends in std::terminate (chDB 26.7;
// a ClickHouse server registers an error handler for it, the engine does
// not). A client resets a connection when it closes it with unread data,
// or dies with it open, as a killed weft or test does. So the native port
// is weft's: guardNative accepts the clients there and forwards each to
// the engine's own port, and when a client goes, by a reset or not, it
// closes the engine's side with a FIN and reads what the engine still
// sends until the engine closes: the engine never sees a reset
// (docs/architecture.md, "The embedded ClickHouse").

// drainLimit bounds how long a connection whose client went is read after
// its FIN (a query the engine cancels ends long before).
const drainLimit = 10 * time.Minute

// listenGuard listens on the native port clients use.
func listenGuard(port int) (net.Listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ListenHost, strconv.Itoa(port)))
	if errors.Is(err, syscall.EADDRINUSE) {
		// The words Start looks for, as the engine says them.
		return nil, fmt.Errorf("embedch: native port %s:%d: Address already in use", ListenHost, port)
	}
	if err != nil {
		return nil, fmt.Errorf("embedch: native port: %w", err)
	}
	return ln, nil
}

// freeLoopbackPort returns a port free on ListenHost for the engine's own
// native port.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ListenHost, "0"))
	if err != nil {
		return 0, fmt.Errorf("embedch: pick the engine's port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// guardNative forwards every connection accepted on ln to upstream until
// ln is closed.
func guardNative(ln net.Listener, upstream string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: try again
			continue
		}
		go forward(c.(*net.TCPConn), upstream)
	}
}

// forward copies between a client and the engine both ways. When the
// client is done, the engine gets a FIN and is read to its end.
func forward(client *net.TCPConn, upstream string) {
	defer client.Close()
	d, err := net.DialTimeout("tcp", upstream, 5*time.Second)
	if err != nil {
		return // the engine is not up yet: the client sees the connection closed
	}
	up := d.(*net.TCPConn)
	defer up.Close() // read to EOF by then: a FIN, not a reset
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		if _, err := io.Copy(client, up); err == nil {
			_ = client.CloseWrite() // the engine closed: so do we
			return
		}
		// The client is gone: read what the engine still sends.
		_ = up.SetReadDeadline(time.Now().Add(drainLimit))
		_, _ = io.Copy(io.Discard, up)
	}()
	_, _ = io.Copy(up, client) // until the client's FIN or reset
	_ = up.CloseWrite()
	<-drained
}
