package tracing

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// clientCert writes a self-signed client certificate and its key into dir.
func clientCert(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "weft-tracer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err = x509.ParseCertificate(der)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return certFile, keyFile, cert
}

// TestExporterTLS: an OTLP/HTTP receiver over TLS that requires a client
// certificate. The exporter trusts only the system's roots by default (the
// test server's certificate is refused), tracing.tls.ca_file makes it trust
// that server, and only with cert_file/key_file does the receiver take the
// spans; insecure_skip_verify stays off unless set.
func TestExporterTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := clientCert(t, dir)
	rcv := &receiver{}
	srv := httptest.NewUnstartedServer(rcv)
	clients := x509.NewCertPool()
	clients.AddCert(cert)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	send := func(tc TLS) error {
		t.Helper()
		cfg := Default()
		cfg.Endpoint, cfg.TLS = srv.URL+"/v1/traces", tc
		require.NoError(t, cfg.Validate())
		x, err := newExporter(cfg, nil, clockwork.NewFakeClock(), zerolog.Nop(), newMetrics(prometheus.NewRegistry()))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = x.send(ctx, testTraces(2))
		return err
	}
	err := send(TLS{})
	require.Error(t, err, "the system's roots do not trust the test server")
	assert.ErrorContains(t, err, "certificate")
	require.Error(t, send(TLS{CAFile: caFile}), "the receiver requires a client certificate")
	assert.Zero(t, rcv.received())
	require.NoError(t, send(TLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}))
	assert.Equal(t, 2, rcv.received())
	// Skipping verification is opt-in: it works without the CA only when set.
	require.NoError(t, send(TLS{InsecureSkipVerify: true, CertFile: certFile, KeyFile: keyFile}))
	assert.Equal(t, 4, rcv.received())
}

func TestConfigValidateTLS(t *testing.T) {
	c := Default()
	c.Enabled, c.IDKeyFile, c.Endpoint = true, "k", "http://127.0.0.1:4318/v1/traces"
	c.TLS.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	err := c.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tls: is set but endpoint")
	assert.Contains(t, err.Error(), "tls.ca_file")
	c.Endpoint = "https://collector:4318/v1/traces"
	c.TLS = TLS{CertFile: "only-cert.pem"}
	assert.ErrorContains(t, c.Validate(), "cert_file and key_file must be set together")
}

// serverCert writes a self-signed certificate for 127.0.0.1 and its key
// into dir.
func serverCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(8), Subject: pkix.Name{CommonName: "otlp-receiver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return certFile, keyFile
}

// grpcReceiver is an OTLP/gRPC trace service that counts the spans it took.
type grpcReceiver struct {
	ptraceotlp.UnimplementedGRPCServer
	spans atomic.Int64
}

func (r *grpcReceiver) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	r.spans.Add(int64(req.Traces().SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

// TestExporterGRPCTLS: the same tracing.tls settings over OTLP/gRPC, to a
// gRPC server that requires a client certificate: the system's roots do
// not trust it, ca_file does, and only with cert_file/key_file does it
// take the spans.
func TestExporterGRPCTLS(t *testing.T) {
	dir := t.TempDir()
	clientFile, clientKey, clientX509 := clientCert(t, dir)
	serverFile, serverKey := serverCert(t, dir)
	pair, err := tls.LoadX509KeyPair(serverFile, serverKey)
	require.NoError(t, err)
	clients := x509.NewCertPool()
	clients.AddCert(clientX509)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients, MinVersion: tls.VersionTLS12})))
	rcv := &grpcReceiver{}
	ptraceotlp.RegisterGRPCServer(srv, rcv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	send := func(tc TLS) error {
		t.Helper()
		cfg := Default()
		cfg.Protocol, cfg.Endpoint, cfg.TLS, cfg.Timeout = ProtocolGRPC, "https://"+lis.Addr().String(), tc, 5*time.Second
		require.NoError(t, cfg.Validate())
		x, err := newExporter(cfg, nil, clockwork.NewFakeClock(), zerolog.Nop(), newMetrics(prometheus.NewRegistry()))
		require.NoError(t, err)
		defer func() { _ = x.close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = x.send(ctx, testTraces(2))
		return err
	}
	err = send(TLS{})
	require.Error(t, err, "the system's roots do not trust the test server")
	assert.ErrorContains(t, err, "certificate")
	require.Error(t, send(TLS{CAFile: serverFile}), "the server requires a client certificate")
	assert.Zero(t, rcv.spans.Load())
	require.NoError(t, send(TLS{CAFile: serverFile, CertFile: clientFile, KeyFile: clientKey}))
	assert.Equal(t, int64(2), rcv.spans.Load())
}
