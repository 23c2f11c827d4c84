package httpserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServeUntilCancelled(t *testing.T) {
	s := New("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }), Settings{})
	require.NoError(t, s.Start(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	resp, err := http.Get("http://" + s.Addr() + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, "ok", string(body))
	http.DefaultClient.CloseIdleConnections()

	cancel()
	require.NoError(t, <-done)
	require.NoError(t, s.Shutdown(context.Background()))
	require.NoError(t, s.Shutdown(context.Background()), "a second Shutdown is harmless")
	_, err = http.Get("http://" + s.Addr() + "/")
	assert.Error(t, err, "nothing serves after Run returned")
}

func TestBusyPortFailsStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	s := New(ln.Addr().String(), http.NotFoundHandler(), Settings{})
	err = s.Start(context.Background())
	require.ErrorContains(t, err, "http listen "+ln.Addr().String())
	require.NoError(t, s.Shutdown(context.Background()), "Shutdown without a Start that succeeded")
}
