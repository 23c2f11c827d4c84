// Package kafkaconn turns weft's Kafka connection settings into franz-go client
// options, shared by the tap, the lag monitor and the demo producer.
package kafkaconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/weft-sh/weft/internal/config"
)

// Config says how to reach a Kafka cluster.
type Config struct {
	// Brokers are the bootstrap addresses (host:port). Required.
	Brokers []string `yaml:"brokers"`
	// ClientID is sent to the brokers. Default "weft".
	ClientID string `yaml:"client_id"`
	// TLS to the brokers. Default off.
	TLS config.TLS `yaml:"tls"`
	// SASL authentication. Default none.
	SASL SASL `yaml:"sasl"`
	// DialTimeout bounds one connection attempt. Default 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// SASL configures SASL authentication.
type SASL struct {
	// Mechanism is one of "", "plain", "scram-sha-256", "scram-sha-512".
	Mechanism string `yaml:"mechanism"`
	// Username to authenticate as.
	Username string `yaml:"username"`
	// Password of Username.
	Password string `yaml:"password"`
}

// Default returns a Config for a local broker.
func Default() Config {
	return Config{Brokers: []string{"127.0.0.1:9092"}, ClientID: "weft", DialTimeout: 10 * time.Second}
}

// Validate reports every problem with its key.
func (c Config) Validate() error {
	var p config.Problems
	if len(c.Brokers) == 0 {
		p.Addf("brokers", "at least one broker address is required")
	}
	for i, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			p.Addf(fmt.Sprintf("brokers[%d]", i), "%q is not host:port", b)
		}
	}
	switch strings.ToLower(c.SASL.Mechanism) {
	case "", "none":
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.SASL.Username == "" {
			p.Addf("sasl.username", "required with mechanism %s", c.SASL.Mechanism)
		}
	default:
		p.Addf("sasl.mechanism", "unknown mechanism %q (want plain, scram-sha-256 or scram-sha-512)", c.SASL.Mechanism)
	}
	if c.DialTimeout < 0 {
		p.Addf("dial_timeout", "must not be negative")
	}
	p.Merge("tls", c.TLS.Validate())
	return p.Err()
}

// Opts returns the franz-go options for the connection (not for consuming).
// A later kgo.WithLogger in the caller's options replaces the logger.
func (c Config) Opts(log zerolog.Logger) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.WithLogger(NewLogger(log)),
	}
	if c.ClientID != "" {
		opts = append(opts, kgo.ClientID(c.ClientID))
	}
	if c.DialTimeout > 0 {
		opts = append(opts, kgo.DialTimeout(c.DialTimeout))
	}
	tlsCfg, err := c.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("kafka tls: %w", err)
	}
	if tlsCfg != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsCfg))
	}
	switch strings.ToLower(c.SASL.Mechanism) {
	case "plain":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsMechanism()))
	case "scram-sha-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsSha256Mechanism()))
	case "scram-sha-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsSha512Mechanism()))
	}
	return opts, nil
}

// ErrUnreachable marks a cluster that did not answer.
var ErrUnreachable = errors.New("kafka unreachable")

// ErrAuthentication marks a cluster that answered and rejected the
// credentials (or the SASL mechanism). Retrying does not help.
var ErrAuthentication = errors.New("kafka authentication failed")

// ErrTLS marks a TLS handshake that failed, e.g. on a certificate the
// configured CAs do not trust. Retrying does not help.
var ErrTLS = errors.New("kafka tls handshake failed")

// Ping asks the cluster for its metadata, so a wrong address, password or CA
// fails at start-up with one clear error instead of endless retries later.
// The broker's own error stays in the chain (errors.Is with kerr values).
func Ping(ctx context.Context, cl *kgo.Client, brokers []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := cl.Ping(ctx)
	if err == nil {
		return nil
	}
	addrs := strings.Join(brokers, ",")
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.UnsupportedSaslMechanism),
		errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("%w at %s: %w", ErrAuthentication, addrs, err)
	case errors.As(err, &certErr), errors.As(err, &alert):
		return fmt.Errorf("%w with %s: %w", ErrTLS, addrs, err)
	}
	return fmt.Errorf("%w: brokers %s did not answer within %s: %w", ErrUnreachable, addrs, timeout, err)
}
