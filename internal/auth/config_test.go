package auth

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultValidates(t *testing.T) {
	require.NoError(t, Default().Validate())
}

// Every bad setting is reported with its key.
func TestConfigProblemsNameTheKey(t *testing.T) {
	_, hash, err := GenerateToken()
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"unknown role", func(c *Config) { c.Tokens = []Token{{Name: "a", Roles: []Role{"admin"}, Hash: hash}} },
			[]string{`tokens[0].roles[0]: unknown role "admin": want viewer, operator, auditor`}},
		{"no roles", func(c *Config) { c.Tokens = []Token{{Name: "a", Hash: hash}} }, []string{"tokens[0].roles: required"}},
		{"bad name", func(c *Config) { c.Tokens = []Token{{Name: "a b", Roles: []Role{Viewer}, Hash: hash}} }, []string{`tokens[0].name: "a b"`}},
		{"plain token as hash", func(c *Config) { c.Tokens = []Token{{Name: "a", Roles: []Role{Viewer}, Hash: "weft_abc"}} },
			[]string{"tokens[0].hash: want sha256:<64 hex digits>"}},
		{"short hash", func(c *Config) { c.Tokens = []Token{{Name: "a", Roles: []Role{Viewer}, Hash: "sha256:abcd"}} },
			[]string{"tokens[0].hash: want sha256:<64 hex digits>"}},
		{"duplicates", func(c *Config) {
			c.Tokens = []Token{{Name: "a", Roles: []Role{Viewer}, Hash: hash}, {Name: "a", Roles: []Role{Viewer}, Hash: hash}}
		}, []string{`tokens[1].name: "a" is also tokens[0]'s name`, "tokens[1].hash: the same token as tokens[0]"}},
		{"oidc without audience", func(c *Config) { c.OIDC.Issuer = "https://id.example.com" }, []string{"oidc.audience: required with issuer"}},
		{"oidc over http", func(c *Config) { c.OIDC.Issuer, c.OIDC.Audience = "http://id.example.com", "weft" },
			[]string{"oidc.issuer: \"http://id.example.com\": want an https:// URL (http only on loopback)"}},
		{"oidc keys without issuer", func(c *Config) { c.OIDC.Audience = "weft" }, []string{"oidc.issuer: required when audience or role_map is set"}},
		{"role map to unknown role", func(c *Config) {
			c.OIDC.Issuer, c.OIDC.Audience, c.OIDC.RoleMap = "https://id.example.com", "weft", map[string]Role{"oncall": "root"}
		}, []string{`oidc.role_map.oncall: unknown role "root"`}},
		{"empty claims", func(c *Config) {
			c.OIDC.Issuer, c.OIDC.Audience, c.OIDC.RolesClaim, c.OIDC.UsernameClaim = "https://id.example.com", "weft", "", ""
		}, []string{"oidc.roles_claim: required", "oidc.username_claim: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			err := c.Validate()
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Equal(t, len(tc.want), strings.Count(err.Error(), "; ")+1, "no other problem: %v", err)
		})
	}
}
