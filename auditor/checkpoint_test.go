package auditor

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
)

func TestCheckpointSignOpen(t *testing.T) {
	skey, vkey, err := GenerateKey("weft-prod")
	require.NoError(t, err)
	s, err := NewSigner(skey + "\n")
	require.NoError(t, err)
	assert.Equal(t, vkey, s.VerifierKey(), "derived from the signer key")
	assert.Equal(t, "weft-prod", s.Name())
	v, err := NewVerifier(vkey)
	require.NoError(t, err)

	origin := LogOrigin("lkc-1", "payments", 7)
	assert.Equal(t, "weft/lkc-1/payments/7", origin)
	cp := Checkpoint{Origin: origin, Size: 42, Root: Hash{1, 2, 3}}
	sc, err := s.Sign(cp)
	require.NoError(t, err)
	assert.True(t, sc.Signed)
	assert.True(t, bytes.HasPrefix(sc.Note, cp.Text()))

	got, err := v.Open(sc.Note, origin)
	require.NoError(t, err)
	assert.Equal(t, cp, got.Checkpoint)

	// A witness's cosignature is ignored, not an error.
	wskey, _, err := note.GenerateKey(nil, "witness.example")
	if err == nil {
		ws, _ := note.NewSigner(wskey)
		n, err := note.Open(sc.Note, note.VerifierList(v.v))
		require.NoError(t, err)
		cosigned, err := note.Sign(n, ws)
		require.NoError(t, err)
		_, err = v.Open(cosigned, origin)
		assert.NoError(t, err)
	}

	_, err = v.Open(sc.Note, LogOrigin("lkc-1", "payments", 8))
	assert.ErrorIs(t, err, ErrTampered, "another log's checkpoint")

	_, otherV, _ := GenerateKey("weft-prod")
	other, err := NewVerifier(otherV)
	require.NoError(t, err)
	_, err = other.Open(sc.Note, origin)
	assert.ErrorIs(t, err, ErrUnverifiable)
	assert.ErrorContains(t, err, "not signed by weft-prod+")

	forged := bytes.Replace(sc.Note, []byte("\n42\n"), []byte("\n43\n"), 1)
	_, err = v.Open(forged, origin)
	assert.ErrorIs(t, err, ErrTampered)

	// Non-canonical forms of the same text are refused.
	for name, msg := range map[string][]byte{
		"leading zero": bytes.Replace(sc.Note, []byte("\n42\n"), []byte("\n042\n"), 1),
		"extension":    bytes.Replace(sc.Note, []byte("=\n\n"), []byte("=\next\n\n"), 1),
	} {
		_, err := v.Open(msg, origin)
		assert.Error(t, err, name)
	}
}

func TestCheckpointUnsigned(t *testing.T) {
	var s *Signer // no key configured
	cp := Checkpoint{Origin: ActionsOrigin("c1"), Size: 3, Root: Hash{9}}
	sc, err := s.Sign(cp)
	require.NoError(t, err)
	assert.False(t, sc.Signed)
	assert.Equal(t, cp.Text(), sc.Note)
	got, err := ParseCheckpoint(sc.Note, ActionsOrigin("c1"))
	require.NoError(t, err)
	assert.False(t, got.Signed)
	assert.Equal(t, cp, got.Checkpoint)
	_, err = ParseCheckpoint(sc.Note, ActionsOrigin("c2"))
	assert.ErrorIs(t, err, ErrTampered)
	_, err = s.Sign(Checkpoint{Origin: "two\nlines"})
	assert.Error(t, err)
}

func TestCheckConsistentRefusesForks(t *testing.T) {
	a := Checkpoint{Origin: "o", Size: 5, Root: Hash{1}}
	assert.ErrorContains(t, CheckConsistent(a, Checkpoint{Origin: "o", Size: 5, Root: Hash{2}}, nil), "inconsistent")
	assert.ErrorContains(t, CheckConsistent(a, Checkpoint{Origin: "o", Size: 4, Root: Hash{1}}, nil), "shrank")
	assert.ErrorContains(t, CheckConsistent(a, Checkpoint{Origin: "p", Size: 6}, nil), "two logs")
	assert.NoError(t, CheckConsistent(a, a, nil))
}

func TestKeyNames(t *testing.T) {
	for _, name := range []string{"", "a b", "a+b", "a\tb"} {
		_, _, err := GenerateKey(name)
		assert.Error(t, err, "%q", name)
	}
	for _, id := range []string{"", "a/b", "a b", "a+b", strings.Repeat("x", 201)} {
		assert.Error(t, ValidClusterID(id), "%q", id)
	}
	assert.NoError(t, ValidClusterID("MkU3OEVBNTcwNTJENDM2Qg"))
	_, err := NewSigner("PRIVATE+KEY+x+00000000+AAAA")
	assert.Error(t, err)
	assert.NotContains(t, err.Error(), "AAAA", "a key is never echoed")
}

func TestConfigLoadsKeys(t *testing.T) {
	dir := t.TempDir()
	skey, vkey, err := GenerateKey("weft")
	require.NoError(t, err)
	keyFile := filepath.Join(dir, "signing.key")
	require.NoError(t, os.WriteFile(keyFile, []byte(skey+"\n"), 0o600))
	source := GenerateSourceKey()

	c := Default()
	require.NoError(t, c.Validate())
	t.Setenv("WEFT_AUDIT_SIGNING_KEY", "")
	t.Setenv("WEFT_AUDIT_SOURCE_KEY", "")
	s, err := c.LoadSigner()
	require.NoError(t, err)
	assert.Nil(t, s, "no key: unsigned")
	k, err := c.LoadSourceKey()
	require.NoError(t, err)
	assert.Nil(t, k)
	assert.Equal(t, Hash{}, k.Commit(SourceRecord{Value: []byte("x")}), "a nil key commits to nothing")

	t.Setenv("WEFT_AUDIT_SIGNING_KEY", skey)
	t.Setenv("WEFT_AUDIT_SOURCE_KEY", source)
	s, err = c.LoadSigner()
	require.NoError(t, err)
	assert.Equal(t, vkey, s.VerifierKey())
	k, err = c.LoadSourceKey()
	require.NoError(t, err)
	assert.NotEqual(t, Hash{}, k.OrderTag("ORD-1"))
	assert.Equal(t, k.OrderTag("ORD-1"), k.OrderTag("ORD-1"))
	assert.NotEqual(t, k.OrderTag("ORD-1"), k.OrderTag("ORD-2"))

	c.SigningKeyFile = keyFile
	t.Setenv("WEFT_AUDIT_SIGNING_KEY", "garbage")
	s, err = c.LoadSigner()
	require.NoError(t, err, "the file wins over the environment")
	assert.Equal(t, vkey, s.VerifierKey())

	c.SigningKeyFile = filepath.Join(dir, "missing.key")
	_, err = c.LoadSigner()
	assert.ErrorContains(t, err, "missing.key")
	c.SigningKeyFile = ""
	_, err = c.LoadSigner()
	assert.ErrorContains(t, err, "environment variable WEFT_AUDIT_SIGNING_KEY", "a bad key is an error, never unsigned")
	t.Setenv("WEFT_AUDIT_SOURCE_KEY", "c2hvcnQ=")
	_, err = c.LoadSourceKey()
	assert.ErrorContains(t, err, "at least 32")

	bad := Config{SigningKeyEnv: "1BAD", SourceKeyEnv: "A-B", SigningKeyFile: "k", SourceKeyFile: "k"}
	err = bad.Validate()
	require.Error(t, err)
	for _, key := range []string{"signing_key_env", "source_key_env", "source_key_file"} {
		assert.Contains(t, err.Error(), key)
	}
}
