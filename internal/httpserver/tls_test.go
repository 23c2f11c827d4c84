package httpserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/testenv"
)

// writeCert writes a new self-signed certificate for 127.0.0.1 named cn,
// and its key, over certFile and keyFile, and moves their modification
// time to at (so the change shows however coarse the file system's clock).
func writeCert(t *testing.T, certFile, keyFile, cn string, at time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	require.NoError(t, os.Chtimes(certFile, at, at))
	require.NoError(t, os.Chtimes(keyFile, at, at))
}

// TestTLSReloadsCertificate: the server serves HTTPS with the configured
// pair; a new pair written over the files is served from the first
// handshake after the check interval, not before; a pair that does not
// load keeps the previous certificate, with one warning.
func TestTLSReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	stamp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	writeCert(t, certFile, keyFile, "first", stamp)

	var clock atomic.Int64 // the handshakes read it on the server's goroutines
	clock.Store(time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC).UnixNano())
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	logs := &testenv.LogBuffer{}
	s := New("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		Settings{TLS: TLS{CertFile: certFile, KeyFile: keyFile}, Logger: zerolog.New(logs), Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	require.NoError(t, s.Start(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done); require.NoError(t, s.Shutdown(context.Background())) }()
	require.Equal(t, "https://"+s.Addr(), s.URL())

	// served is the common name of the certificate a new connection gets,
	// and checks that HTTPS answers.
	served := func() string {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // self-signed test certificates
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(s.URL() + "/")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, "ok", string(body))
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	assert.Equal(t, "first", served())

	writeCert(t, certFile, keyFile, "second", stamp.Add(time.Minute))
	advance(reloadInterval - time.Second)
	assert.Equal(t, "first", served(), "files are looked at no more often than every %s", reloadInterval)
	advance(time.Second)
	assert.Equal(t, "second", served(), "reloaded once the interval passed")
	assert.Contains(t, logs.String(), "http.tls: certificate reloaded")

	require.NoError(t, os.WriteFile(keyFile, []byte("not a key"), 0o600))
	advance(reloadInterval)
	assert.Equal(t, "second", served(), "a pair that does not load keeps the previous certificate")
	advance(reloadInterval)
	assert.Equal(t, "second", served())
	assert.Equal(t, 1, strings.Count(logs.String(), "do not load"), "one warning, not one per check")

	writeCert(t, certFile, keyFile, "third", stamp.Add(2*time.Minute))
	advance(reloadInterval)
	assert.Equal(t, "third", served(), "a fixed pair is loaded at the next check")

	// Plain HTTP to the HTTPS port: refused by net/http, and its complaint
	// is a warning in weft's log.
	resp, err := http.Get("http://" + s.Addr() + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	http.DefaultClient.CloseIdleConnections()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `"source":"net/http"`) }, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, logs.String(), `{"level":"warn","source":"net/http","message":"http: TLS handshake error`)
}

func TestTLSBadPairFailsStart(t *testing.T) {
	dir := t.TempDir()
	certFile := filepath.Join(dir, "tls.crt")
	s := New("127.0.0.1:0", http.NotFoundHandler(), Settings{TLS: TLS{CertFile: certFile, KeyFile: filepath.Join(dir, "tls.key")}})
	err := s.Start(context.Background())
	require.ErrorContains(t, err, "http.tls: cert_file "+certFile)
	require.NoError(t, s.Shutdown(context.Background()))
}

func TestTLSValidate(t *testing.T) {
	assert.NoError(t, TLS{}.Validate())
	assert.NoError(t, TLS{CertFile: "a", KeyFile: "b"}.Validate())
	assert.EqualError(t, TLS{CertFile: "a"}.Validate(), "invalid configuration: key_file: required with cert_file")
	assert.EqualError(t, TLS{KeyFile: "b"}.Validate(), "invalid configuration: cert_file: required with key_file")
}
