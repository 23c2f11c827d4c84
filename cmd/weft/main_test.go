package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/internal/embedch"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestMain lets a test run this binary as the weft command (WEFT_TEST_MAIN=1),
// so exit codes and stderr are checked as a user sees them.
func TestMain(m *testing.M) {
	embedch.ChildMain() // the fault tests start their own embedded ClickHouse
	if os.Getenv("WEFT_TEST_MAIN") == "1" {
		os.Args = append([]string{"weft"}, strings.Fields(os.Getenv("WEFT_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runMain runs weft as a process and returns its exit code and stderr.
func runMain(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "WEFT_TEST_MAIN=1", "WEFT_TEST_ARGS="+strings.Join(args, " ")), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, stderr.String()
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "weft.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

// TestBadConfigIsOneLine: a bad config names every bad key, on one line, exit 1.
func TestBadConfigIsOneLine(t *testing.T) {
	path := writeFile(t, "kafka:\n  brokers: [localhost:9092]\ncollector:\n  batch:\n    max_rekords: 5\n  bogus: true\n")
	code, stderr := runMain(t, nil, "run", "--config", path)
	assert.Equal(t, 1, code)
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one line: %q", stderr)
	assert.Contains(t, stderr, "collector.batch.max_rekords: unknown key")
	assert.Contains(t, stderr, "collector.bogus: unknown key")
	assert.NotContains(t, stderr, "goroutine")

	path = writeFile(t, "kafka:\n  brokers: [nohostport]\n  sasl:\n    mechanism: kerberos\ncollector:\n  start_from: middle\n")
	code, stderr = runMain(t, nil, "stuck", "--config", path)
	assert.Equal(t, 1, code)
	for _, k := range []string{"kafka.brokers[0]:", "kafka.sasl.mechanism:", "collector.start_from:"} {
		assert.Contains(t, stderr, k)
	}
}

func TestUnknownFlagIsUsageError(t *testing.T) {
	code, stderr := runMain(t, nil, "stuck", "--no-such-flag")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "unknown flag")
}

// TestUnreachableClickHouseIsOneLine: nothing listens on the address.
func TestUnreachableClickHouseIsOneLine(t *testing.T) {
	code, stderr := runMain(t, []string{"WEFT_CLICKHOUSE_DIAL_TIMEOUT=2s"}, "stuck", "--clickhouse", "127.0.0.1:1")
	assert.Equal(t, 1, code)
	assert.True(t, strings.HasPrefix(stderr, "weft: clickhouse unreachable: 127.0.0.1:1 did not answer"), stderr)
	assert.Equal(t, 1, len(strings.Split(strings.TrimSpace(stderr), "\n")))
}

// TestUnreachableKafkaIsOneLine: ClickHouse is real, the broker address is wrong.
func TestUnreachableKafkaIsOneLine(t *testing.T) {
	ch := testenv.ClickHouse(t)
	code, stderr := runMain(t, []string{"WEFT_KAFKA_DIAL_TIMEOUT=1s", "WEFT_HTTP_LISTEN=127.0.0.1:0"},
		"run", "--brokers", "127.0.0.1:1", "--clickhouse", ch.Addr[0], "--database", ch.Database)
	assert.Equal(t, 1, code, stderr)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	assert.True(t, strings.HasPrefix(last, "weft: kafka unreachable: brokers 127.0.0.1:1 did not answer"), last)
	assert.NotContains(t, stderr, "goroutine")
}

// TestUnreachableIssuerIsOneLine: an OIDC issuer that does not answer
// stops `weft run` at start, before any component starts, with one line
// naming the key.
func TestUnreachableIssuerIsOneLine(t *testing.T) {
	ch := testenv.ClickHouse(t)
	code, stderr := runMain(t, []string{"WEFT_HTTP_LISTEN=127.0.0.1:0", "WEFT_HTTP_AUTH_OIDC_ISSUER=http://127.0.0.1:1", "WEFT_HTTP_AUTH_OIDC_AUDIENCE=weft"},
		"run", "--brokers", "127.0.0.1:1", "--clickhouse", ch.Addr[0], "--database", ch.Database)
	assert.Equal(t, 1, code, stderr)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	assert.True(t, strings.HasPrefix(lines[len(lines)-1], "weft: http.auth.oidc.issuer http://127.0.0.1:1: discovery failed: "), stderr)
	assert.NotContains(t, stderr, "kafka", "no component started")
}

// TestBadAuthConfigNamesTheKey: a token with an unknown role, or a hash
// that is not one, is a config error naming its key.
func TestBadAuthConfigNamesTheKey(t *testing.T) {
	path := writeFile(t, "http:\n  auth:\n    tokens:\n      - name: alice\n        roles: [admin]\n        hash: weft_plaintext\n")
	code, stderr := runMain(t, nil, "run", "--config", path)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `http.auth.tokens[0].roles[0]: unknown role "admin": want viewer, operator, auditor`)
	assert.Contains(t, stderr, "http.auth.tokens[0].hash: want sha256:<64 hex digits>")
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one line: %q", stderr)
}
