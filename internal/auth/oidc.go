package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// discoveryTimeout bounds the issuer's discovery at start, and each later
// fetch of its keys.
const discoveryTimeout = 10 * time.Second

// oidcVerifier checks JWTs of one issuer with go-oidc: signature by the
// issuer's published keys (JWKS, fetched again when a token names a key it
// has not seen), issuer, audience, expiry and not-before.
type oidcVerifier struct {
	cfg      OIDCConfig
	verifier *oidc.IDTokenVerifier
}

// discover fetches the issuer's discovery document: an issuer that does
// not answer, or answers for another issuer, fails start-up.
func discover(ctx context.Context, cfg OIDCConfig, client *http.Client, now func() time.Time) (*oidcVerifier, error) {
	if client == nil {
		client = &http.Client{Timeout: discoveryTimeout}
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), discoveryTimeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("http.auth.oidc.issuer %s: discovery failed: %w", cfg.Issuer, err)
	}
	return &oidcVerifier{cfg: cfg, verifier: p.Verifier(&oidc.Config{ClientID: cfg.Audience, Now: now})}, nil
}

// verify returns the identity raw names, or why it is refused.
func (v *oidcVerifier) verify(ctx context.Context, raw string) (Identity, *Refusal) {
	tok, err := v.verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, v.refusal(raw, err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Identity{}, &Refusal{Reason: BadToken, Message: "token claims are not a JSON object", Detail: err.Error()}
	}
	name, _ := lookupClaim(claims, v.cfg.UsernameClaim).(string)
	if name == "" {
		name = tok.Subject
	}
	if name == "" {
		return Identity{}, &Refusal{Reason: BadToken, Message: fmt.Sprintf("token names nobody: no %q claim and no sub", v.cfg.UsernameClaim)}
	}
	return Identity{Name: name, Roles: v.roles(claims), Method: MethodOIDC}, nil
}

// refusal names why go-oidc refused raw. go-oidc checks the signature
// first and then the claims; only expiry has an error type, so the other
// reasons are read from the token's (unverified) claims: the reason is a
// label for logs and metrics, the decision is go-oidc's.
func (v *oidcVerifier) refusal(raw string, err error) *Refusal {
	var expired *oidc.TokenExpiredError
	if errors.As(err, &expired) {
		return &Refusal{Reason: Expired, Message: "token expired at " + expired.Expiry.UTC().Format(time.RFC3339), Detail: err.Error()}
	}
	c, ok := unverifiedClaims(raw)
	switch {
	case ok && c.Issuer != v.cfg.Issuer:
		return &Refusal{Reason: WrongIssuer, Message: fmt.Sprintf("token issued by %q, not by %q", c.Issuer, v.cfg.Issuer), Detail: err.Error()}
	case ok && !slices.Contains(c.Audience, v.cfg.Audience):
		return &Refusal{Reason: WrongAudience, Message: fmt.Sprintf("token is not for audience %q", v.cfg.Audience), Detail: err.Error()}
	}
	return &Refusal{Reason: BadToken, Message: "token refused: not a valid JWT of " + v.cfg.Issuer, Detail: err.Error()}
}

// roles are the weft roles the token's roles claim grants.
func (v *oidcVerifier) roles(claims map[string]any) []Role {
	var values []string
	switch c := lookupClaim(claims, v.cfg.RolesClaim).(type) {
	case string:
		values = []string{c}
	case []any:
		for _, x := range c {
			if s, ok := x.(string); ok {
				values = append(values, s)
			}
		}
	}
	var roles []Role
	for _, s := range values {
		r := Role(s)
		if len(v.cfg.RoleMap) > 0 {
			r = v.cfg.RoleMap[s]
		}
		if r.valid() && !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles
}

// lookupClaim is the claim name: a top-level claim of that name (which may
// hold dots, as namespaced claims do), else the nested claim the dotted
// path reaches (realm_access.roles); nil when there is none.
func lookupClaim(claims map[string]any, name string) any {
	if c, ok := claims[name]; ok {
		return c
	}
	var cur any = claims
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// claimsSeen are a JWT's issuer and audience, read without checking.
type claimsSeen struct {
	Issuer   string
	Audience []string
}

func unverifiedClaims(raw string) (claimsSeen, bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return claimsSeen{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return claimsSeen{}, false
	}
	var c struct {
		Issuer   string          `json:"iss"`
		Audience json.RawMessage `json:"aud"`
	}
	if json.Unmarshal(b, &c) != nil {
		return claimsSeen{}, false
	}
	seen := claimsSeen{Issuer: c.Issuer}
	var one string
	if json.Unmarshal(c.Audience, &one) == nil {
		seen.Audience = []string{one}
	} else if json.Unmarshal(c.Audience, &seen.Audience) != nil {
		return claimsSeen{}, false
	}
	return seen, true
}
