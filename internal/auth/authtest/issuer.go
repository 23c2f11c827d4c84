// Package authtest is a test OpenID Connect issuer: an httptest server
// serving discovery and a JWKS, and tokens signed with its key (or,
// forged, with another key under the same key ID), made with go-jose as
// an identity provider would.
package authtest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// keyID is the ID of the issuer's one key.
const keyID = "weft-test-key"

// Issuer is a running test issuer.
type Issuer struct {
	// URL is the issuer: its discovery document is at
	// URL/.well-known/openid-configuration.
	URL string
	// Audience is what Claims puts in "aud".
	Audience    string
	key, forger *rsa.PrivateKey
}

// NewIssuer starts an issuer for tokens of audience, closed when the test
// ends.
func NewIssuer(t testing.TB, audience string) *Issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{Audience: audience, key: key, forger: forger}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.URL = srv.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                iss.URL,
			"jwks_uri":                              iss.URL + "/keys",
			"authorization_endpoint":                iss.URL + "/auth",
			"token_endpoint":                        iss.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: keyID, Algorithm: "RS256", Use: "sig"}}})
	})
	return iss
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Claims are a valid token's claims for the user with roles, expiring an
// hour after now.
func (iss *Issuer) Claims(user string, roles []string, now time.Time) map[string]any {
	return map[string]any{
		"iss": iss.URL, "aud": iss.Audience, "sub": "sub-" + user, "preferred_username": user,
		"roles": roles, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// Sign returns claims as a JWT signed with the issuer's key.
func (iss *Issuer) Sign(t testing.TB, claims map[string]any) string {
	return sign(t, iss.key, claims)
}

// Forge returns claims as a JWT signed with another key under the
// issuer's key ID: what an attacker without the issuer's key can make.
func (iss *Issuer) Forge(t testing.TB, claims map[string]any) string {
	return sign(t, iss.forger, claims)
}

func sign(t testing.TB, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), keyID))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
