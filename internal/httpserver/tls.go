package httpserver

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/weft-sh/weft/internal/config"
)

// TLS is the http.tls block: serve HTTPS with a certificate and key read
// from files, and read again when they change (a renewed certificate is
// served without a restart).
type TLS struct {
	// CertFile is the PEM certificate, followed by its intermediates.
	// Default "" (plain HTTP).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the certificate's PEM private key. Required with
	// cert_file.
	KeyFile string `yaml:"key_file"`
}

// Enabled reports whether the server serves HTTPS.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Validate reports the block's problems with their keys. The files are
// read at Start, so a command that does not serve does not need them.
func (t TLS) Validate() error {
	var p config.Problems
	if t.CertFile == "" && t.KeyFile != "" {
		p.Addf("cert_file", "required with key_file")
	}
	if t.KeyFile == "" && t.CertFile != "" {
		p.Addf("key_file", "required with cert_file")
	}
	return p.Err()
}

// reloadInterval is how often, at most, the files are looked at again:
// at the first handshake after it has passed.
const reloadInterval = 5 * time.Second

// certReloader is a tls.Config.GetCertificate that serves the certificate
// of two files and loads them again when either's modification time or
// size changed. A pair that does not load (a renewal half written) keeps
// the previous certificate and is tried again at the next check.
type certReloader struct {
	certFile, keyFile string
	now               func() time.Time
	log               zerolog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	stamp    [2]fileStamp
	checked  time.Time
	lastFail string
}

// fileStamp is what tells that a file changed.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// newCertReloader loads the pair once: a pair that does not load fails
// start-up, naming the keys.
func newCertReloader(t TLS, now func() time.Time, log zerolog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: t.CertFile, keyFile: t.KeyFile, now: now, log: log}
	stamp, cert, err := c.load()
	if err != nil {
		return nil, fmt.Errorf("http.tls: cert_file %s, key_file %s: %w", t.CertFile, t.KeyFile, err)
	}
	c.cert, c.stamp, c.checked = cert, stamp, now()
	return c, nil
}

func (c *certReloader) stamps() ([2]fileStamp, error) {
	var stamp [2]fileStamp
	var err error
	for i, f := range []string{c.certFile, c.keyFile} {
		if stamp[i], err = stampOf(f); err != nil {
			return stamp, err
		}
	}
	return stamp, nil
}

// load reads the pair, its stamps taken first: a file changed while it
// is read is read again at the next check.
func (c *certReloader) load() ([2]fileStamp, *tls.Certificate, error) {
	stamp, err := c.stamps()
	if err != nil {
		return stamp, nil, err
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return stamp, nil, err
	}
	return stamp, &cert, nil
}

// GetCertificate is the current certificate, reloaded first when the
// files changed since the last check (at most every reloadInterval).
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if now.Sub(c.checked) < reloadInterval {
		return c.cert, nil
	}
	c.checked = now
	if stamp, err := c.stamps(); err == nil && stamp == c.stamp {
		return c.cert, nil
	}
	stamp, cert, err := c.load()
	if err != nil {
		if msg := err.Error(); msg != c.lastFail {
			c.lastFail = msg
			c.log.Warn().Err(err).Str("cert_file", c.certFile).Str("key_file", c.keyFile).
				Msg("http.tls: the certificate files do not load; serving the previous certificate")
		}
		return c.cert, nil
	}
	c.cert, c.stamp, c.lastFail = cert, stamp, ""
	ev := c.log.Info().Str("cert_file", c.certFile)
	if cert.Leaf != nil {
		ev = ev.Time("not_after", cert.Leaf.NotAfter)
	}
	ev.Msg("http.tls: certificate reloaded")
	return c.cert, nil
}
