package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/config"
	"github.com/weft-sh/weft/internal/kafkaconn"
)

// Environment variables for the test broker's SASL_SSL listener, set by
// `make test` (scripts/with-servers.sh from scripts/testkafka.sh's DIR).
const (
	// EnvKafkaSASL is the SASL_SSL bootstrap address.
	EnvKafkaSASL = "WEFT_TEST_KAFKA_SASL"
	// EnvKafkaCA is the PEM file of the CA that signed the broker's certificate.
	EnvKafkaCA = "WEFT_TEST_KAFKA_CA"
	// EnvKafkaUsers is the file of "NAME PASSWORD" lines: admin (a super
	// user) and weft (no ACLs), each with PLAIN, SCRAM-SHA-256 and
	// SCRAM-SHA-512 credentials.
	EnvKafkaUsers = "WEFT_TEST_KAFKA_USERS"
)

// SecureKafka is the test broker's SASL_SSL listener: TLS with a throwaway
// CA, then SASL PLAIN or SCRAM, with Kafka's StandardAuthorizer and no
// allow-if-no-ACL fallback, so a user other than admin may do exactly what
// its ACLs grant.
type SecureKafka struct {
	// Brokers is the SASL_SSL bootstrap address.
	Brokers []string
	// CAFile is the PEM file of the CA to trust.
	CAFile string
	dir    string // the broker's DIR: users, authorizer.log
	users  map[string]string
}

// KafkaSecure returns the test broker's SASL_SSL listener.
func KafkaSecure(t testing.TB) *SecureKafka {
	t.Helper()
	Integration(t)
	k := &SecureKafka{users: map[string]string{}}
	for _, env := range []string{EnvKafkaSASL, EnvKafkaCA, EnvKafkaUsers} {
		if os.Getenv(env) == "" {
			t.Fatalf("%s is not set: run `make test`, which starts a real Apache Kafka broker with a SASL_SSL listener", env)
		}
	}
	k.Brokers = strings.Split(os.Getenv(EnvKafkaSASL), ",")
	k.CAFile = os.Getenv(EnvKafkaCA)
	users := os.Getenv(EnvKafkaUsers)
	k.dir = filepath.Dir(users)
	f, err := os.Open(users)
	if err != nil {
		t.Fatalf("test broker users: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, pw, ok := strings.Cut(strings.TrimSpace(sc.Text()), " "); ok {
			k.users[name] = pw
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("test broker users: %v", err)
	}
	return k
}

// Password returns the password of a user created with the broker.
func (k *SecureKafka) Password(t testing.TB, user string) string {
	t.Helper()
	pw, ok := k.users[user]
	if !ok {
		t.Fatalf("test broker has no user %q", user)
	}
	return pw
}

// Conn is weft's connection config for user over TLS (the CA verified) and
// SASL mechanism ("plain", "scram-sha-256" or "scram-sha-512").
func (k *SecureKafka) Conn(mechanism, user, password string) kafkaconn.Config {
	c := kafkaconn.Default()
	c.Brokers = k.Brokers
	c.TLS = config.TLS{Enabled: true, CAFile: k.CAFile}
	c.SASL = kafkaconn.SASL{Mechanism: mechanism, Username: user, Password: password}
	c.DialTimeout = 5 * time.Second
	return c
}

// Client is a franz-go client with conn's settings and opts, closed when the
// test ends.
func (k *SecureKafka) Client(t testing.TB, conn kafkaconn.Config, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base, err := conn.Opts(zerolog.Nop())
	if err != nil {
		t.Fatalf("kafka options: %v", err)
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin is an admin client authenticated as the super user admin over
// SCRAM-SHA-512, closed when the test ends.
func (k *SecureKafka) Admin(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(k.Client(t, k.Conn("scram-sha-512", "admin", k.Password(t, "admin"))))
}

// NewSCRAMUser creates a user of its own for the test, with SCRAM-SHA-256
// and SCRAM-SHA-512 credentials and no ACLs, deleted when the test ends.
func (k *SecureKafka) NewSCRAMUser(t testing.TB, adm *kadm.Client) (user, password string) {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	user, password = "u_"+Name(t), hex.EncodeToString(b)
	alter := func(del []kadm.DeleteSCRAM, up []kadm.UpsertSCRAM) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := adm.AlterUserSCRAMs(ctx, del, up)
		if err != nil {
			return err
		}
		return res.Error()
	}
	// One mechanism per request: Kafka refuses to alter one user twice in
	// the same request.
	for _, m := range []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512} {
		up := []kadm.UpsertSCRAM{{User: user, Mechanism: m, Iterations: 4096, Password: password}}
		if err := alter(nil, up); err != nil {
			t.Fatalf("create SCRAM user %s (%s): %v", user, m, err)
		}
		t.Cleanup(func() {
			if err := alter([]kadm.DeleteSCRAM{{User: user, Mechanism: m}}, nil); err != nil {
				t.Logf("delete SCRAM user %s (%s): %v", user, m, err)
			}
		})
	}
	// Brokers learn new credentials from the metadata log, a moment after
	// the controller accepted them.
	deadline := time.Now().Add(10 * time.Second)
	for _, m := range []string{"scram-sha-256", "scram-sha-512"} {
		for {
			err := k.ping(k.Conn(m, user, password))
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("new SCRAM user %s cannot log in with %s: %v", user, m, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return user, password
}

func (k *SecureKafka) ping(conn kafkaconn.Config) error {
	opts, err := conn.Opts(zerolog.Nop())
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

// Grant creates the ACLs b describes (for any host), deleted when the test
// ends.
func (k *SecureKafka) Grant(t testing.TB, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	b.AllowHosts("*") // explicit, so that b also works as the delete filter
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := adm.CreateACLs(ctx, b)
	if err != nil {
		t.Fatalf("create ACLs: %v", err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create ACL %s %s %s on %s %s: %v", r.Principal, r.Permission, r.Operation, r.Type, r.Name, r.Err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := adm.DeleteACLs(ctx, b); err != nil {
			t.Logf("delete ACLs: %v", err)
		}
	})
}

// Denials returns the lines of the broker's authorizer log (every request
// the authorizer denied) that name principal, e.g. "User:u_x".
func (k *SecureKafka) Denials(t testing.TB, principal string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k.dir, "authorizer.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("authorizer log: %v", err)
	}
	var out []string
	needle := "Principal = " + principal + " "
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, needle) {
			out = append(out, l)
		}
	}
	return out
}
