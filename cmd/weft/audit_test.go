package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/auditor"
)

// runCmd runs weft in process and returns its output and error.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestAuditKey(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "signing.key")
	out, err := runCmd(t, "audit", "key", "--generate", "--name", "weft-prod", "--out", keyFile)
	require.NoError(t, err)
	st, err := os.Stat(keyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	vkey := lines[len(lines)-1]
	assert.True(t, strings.HasPrefix(vkey, "weft-prod+"), out)
	skey, _ := os.ReadFile(keyFile)
	assert.NotContains(t, out, strings.TrimSpace(string(skey)), "the secret is never printed")

	_, err = runCmd(t, "audit", "key", "--generate", "--out", keyFile)
	assert.ErrorContains(t, err, "exists", "never over an existing key")
	_, err = runCmd(t, "audit", "key", "--generate")
	assert.ErrorAs(t, err, new(usageError))

	t.Setenv("WEFT_AUDIT_SIGNING_KEY_FILE", keyFile)
	out, err = runCmd(t, "audit", "key")
	require.NoError(t, err)
	assert.Equal(t, vkey+"\n", out, "the verifier key of the configured key")
	out, err = runCmd(t, "audit", "key", "-o", "json")
	require.NoError(t, err)
	var rep AuditKeyReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, AuditKeyReport{Name: "weft-prod", VerifierKey: vkey}, rep)

	t.Setenv("WEFT_AUDIT_SIGNING_KEY_FILE", "")
	t.Setenv("WEFT_AUDIT_SIGNING_KEY", "")
	_, err = runCmd(t, "audit", "key")
	assert.ErrorContains(t, err, "checkpoints are unsigned")
}

func TestAuditVerifyBundle(t *testing.T) {
	bundle := filepath.Join("..", "..", "auditor", "testdata", "bundle.zip")
	keyFile := filepath.Join("..", "..", "auditor", "testdata", "bundle.vkey")
	key, err := os.ReadFile(keyFile)
	require.NoError(t, err)

	out, err := runCmd(t, "audit", "verify-bundle", bundle, "--key", keyFile)
	require.NoError(t, err, out)
	assert.Contains(t, out, "VERIFIED with weft-test+")
	assert.Contains(t, out, "orders/3@102")
	assert.Contains(t, out, `erased by action 0 (bob`)
	assert.Contains(t, out, "weft/c1/orders/3")

	out, err = runCmd(t, "audit", "verify-bundle", bundle, "--key", strings.TrimSpace(string(key)), "-o", "json")
	require.NoError(t, err)
	var v BundleVerdict
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	assert.Equal(t, "verified", v.Verdict)
	require.NotNil(t, v.Report)
	assert.Len(t, v.Report.Events, 3)

	out, err = runCmd(t, "audit", "verify-bundle", bundle)
	require.Error(t, err)
	assert.Contains(t, out, "NOT VERIFIED")
	assert.False(t, errors.As(err, new(codeError)), "exit 1, not 4")

	// One byte of a stored row changed: tampered, exit 4.
	data, err := os.ReadFile(bundle)
	require.NoError(t, err)
	b, err := auditor.ReadBundle(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	b.Events[0].Row[len(b.Events[0].Row)-1] ^= 1
	forged := filepath.Join(t.TempDir(), "forged.zip")
	f, err := os.Create(forged)
	require.NoError(t, err)
	require.NoError(t, auditor.WriteBundle(f, b))
	require.NoError(t, f.Close())
	out, err = runCmd(t, "audit", "verify-bundle", forged, "--key", keyFile)
	var ce codeError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, exitTampered, ce.code)
	assert.Contains(t, out, "TAMPERED: events/0000/row.bin")

	code, stderr := runMain(t, nil, "audit", "verify-bundle", forged, "--key", keyFile)
	assert.Equal(t, 4, code, stderr)
	code, stderr = runMain(t, nil, "audit", "verify-bundle", filepath.Join(t.TempDir(), "missing.zip"), "--key", keyFile)
	assert.Equal(t, 1, code, stderr)
	_, otherKey, _ := auditor.GenerateKey("weft-test")
	code, stderr = runMain(t, nil, "audit", "verify-bundle", bundle, "--key", otherKey)
	assert.Equal(t, 1, code, "the wrong key cannot tell: %s", stderr)
	assert.Contains(t, stderr, "not signed by weft-test+")
}
