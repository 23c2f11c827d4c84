package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGenerateToken(t *testing.T) {
	tok, hash, err := GenerateToken()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(tok, "weft_"))
	assert.Len(t, tok, len("weft_")+43, "256 bits, base64url without padding")
	assert.True(t, ValidToken(tok))
	sum := sha256.Sum256([]byte(tok))
	assert.Equal(t, "sha256:"+hex.EncodeToString(sum[:]), hash, "the SHA-256 of the whole token")
	assert.Equal(t, hash, HashToken(tok))

	tok2, _, err := GenerateToken()
	require.NoError(t, err)
	assert.NotEqual(t, tok, tok2)
	for _, bad := range []string{"", "weft_", "weft_abc", tok[5:], "xeft_" + tok[5:], tok + "A"} {
		assert.False(t, ValidToken(bad), bad)
	}
}

func TestTokenSetMatch(t *testing.T) {
	a, ha, _ := GenerateToken()
	b, hb, _ := GenerateToken()
	c, _, _ := GenerateToken()
	s := newTokenSet([]Token{{Name: "alice", Roles: []Role{Operator}, Hash: ha}, {Name: "bob", Roles: []Role{Viewer, Auditor}, Hash: hb}})
	id, ok := s.match(a)
	require.True(t, ok)
	assert.Equal(t, Identity{Name: "alice", Roles: []Role{Operator}, Method: MethodToken}, id)
	id, ok = s.match(b)
	require.True(t, ok)
	assert.Equal(t, "bob", id.Name)
	_, ok = s.match(c)
	assert.False(t, ok, "a token whose hash is not configured")
	_, ok = s.match(ha)
	assert.False(t, ok, "the hash is not the token")
}

func TestReadTokensFile(t *testing.T) {
	dir := t.TempDir()
	_, h, _ := GenerateToken()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte("- name: ci\n  roles: [viewer]\n  hash: "+h+"\n"), 0o600))
	ts, err := readTokensFile(good)
	require.NoError(t, err)
	assert.Equal(t, []Token{{Name: "ci", Roles: []Role{Viewer}, Hash: h}}, ts)

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("- name: ci\n  roles: [viewer]\n  hash: "+h+"\n- name: x\n  roles: [admin]\n  hash: "+h+"\n"), 0o600))
	_, err = readTokensFile(bad)
	require.ErrorContains(t, err, `[1].roles[0]: unknown role "admin"`)
	assert.ErrorContains(t, err, `[1].hash: the same token as [0]`)

	unknown := filepath.Join(dir, "unknown.yaml")
	require.NoError(t, os.WriteFile(unknown, []byte("- name: ci\n  role: viewer\n"), 0o600))
	_, err = readTokensFile(unknown)
	assert.ErrorContains(t, err, "field role not found")
}
