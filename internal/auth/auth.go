package auth

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Identity is who a request is, once authenticated.
type Identity struct {
	// Name is the token's name or the OIDC username: what
	// acknowledgements and the operator-actions log record.
	Name string
	// Roles are what it may do. An OIDC identity may have none.
	Roles []Role
	// Method is how it was authenticated: MethodToken, MethodOIDC, or
	// MethodNone when authentication is disabled.
	Method string
}

// The methods of an Identity.
const (
	MethodToken = "token"
	MethodOIDC  = "oidc"
	MethodNone  = "none"
)

// Anonymous is every caller when authentication is disabled: it holds
// every role.
var Anonymous = Identity{Name: "anonymous", Roles: Roles, Method: MethodNone}

// Has reports whether the identity may do what needs need.
func (id Identity) Has(need Role) bool {
	return slices.ContainsFunc(id.Roles, func(r Role) bool { return r.grants(need) })
}

func (id Identity) roleNames() string {
	if len(id.Roles) == 0 {
		return "none"
	}
	s := make([]string, len(id.Roles))
	for i, r := range id.Roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

type identityKey struct{}

// IdentityFrom is the identity Authenticate or Require put in ctx.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Settings are what the wiring passes in.
type Settings struct {
	// Logger receives the start-up lines and a warning per refusal.
	Logger zerolog.Logger
	// Registerer, when set, gets weft_http_requests_refused_total.
	Registerer prometheus.Registerer
	// Now is the clock tokens' expiry is checked against. Default
	// time.Now.
	Now func() time.Time
	// HTTPClient fetches the issuer's discovery document and keys.
	// Default: a client with a 10 s timeout and the system's CAs.
	HTTPClient *http.Client
	// OnDenied, when set, is called for every 403 — an authenticated
	// identity lacking the role — before the answer is written (weft
	// records it in the operator-actions log). It is not called for a
	// 401: an unauthenticated caller must not be able to write anywhere.
	OnDenied func(r *http.Request, id Identity, need Role)
}

// Authenticator authenticates and authorizes HTTP requests.
type Authenticator struct {
	cfg     Config
	s       Settings
	refused *prometheus.CounterVec
	tokens  *tokenSet
	oidc    *oidcVerifier
}

// New validates cfg and builds the authenticator; it does no I/O. The
// tokens of cfg.Tokens are accepted at once; Start adds the tokens file's
// and discovers the OIDC issuer.
func New(cfg Config, s Settings) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	a := &Authenticator{cfg: cfg, s: s, tokens: newTokenSet(cfg.Tokens), refused: newRefusedCounter()}
	if s.Registerer != nil {
		if err := s.Registerer.Register(a.refused); err != nil {
			return nil, fmt.Errorf("http auth metrics: %w", err)
		}
	}
	return a, nil
}

// Start reads the tokens file and discovers the OIDC issuer: a file that
// cannot be read or holds a bad entry, or an issuer that does not answer,
// fails start-up. It logs, loudly, when authentication is disabled or
// when it is on with nothing to authenticate against.
func (a *Authenticator) Start(ctx context.Context) error {
	log := a.s.Logger
	if a.cfg.Disabled {
		log.Warn().Msg("http.auth.disabled is true: the API and /debug/pprof answer anyone who reaches the port, as \"anonymous\"; acknowledgements cannot say who made them")
		return nil
	}
	all := a.cfg.Tokens
	if f := a.cfg.TokensFile; f != "" {
		more, err := readTokensFile(f)
		if err != nil {
			return fmt.Errorf("http.auth.tokens_file %s: %w", f, err)
		}
		if err := checkSharedTokens(a.cfg.Tokens, more); err != nil {
			return fmt.Errorf("http.auth.tokens_file %s: %w", f, err)
		}
		all = append(slices.Clip(all), more...)
	}
	a.tokens = newTokenSet(all)
	if a.cfg.OIDC.enabled() {
		v, err := discover(ctx, a.cfg.OIDC, a.s.HTTPClient, a.s.Now)
		if err != nil {
			return err
		}
		a.oidc = v
	}
	if !a.configured() {
		log.Warn().Msg("http.auth: no token and no OIDC issuer configured: every /api/ request is refused (401). " + howToConfigure)
		return nil
	}
	log.Info().Int("tokens", len(all)).Str("oidc_issuer", a.cfg.OIDC.Issuer).Msg("http auth on")
	return nil
}

const howToConfigure = "Make a token with `weft auth token --name NAME --role viewer` and add its entry to http.auth.tokens (or http.auth.tokens_file), or configure http.auth.oidc, or set http.auth.disabled: true (docs/security.md)"

func (a *Authenticator) configured() bool { return len(a.tokens.hashes) > 0 || a.oidc != nil }

// checkSharedTokens rejects a file token whose name or token is also one
// of the config's.
func checkSharedTokens(inConfig, inFile []Token) error {
	for i, t := range inFile {
		for j, c := range inConfig {
			switch {
			case t.Name == c.Name:
				return fmt.Errorf("[%d].name %q is also http.auth.tokens[%d]'s name", i, t.Name, j)
			case t.Hash == c.Hash:
				return fmt.Errorf("[%d].hash: the same token as http.auth.tokens[%d]", i, j)
			}
		}
	}
	return nil
}

// Authenticate serves next with the request's identity in its context
// (IdentityFrom), or refuses the request with 401.
func (a *Authenticator) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ref := a.identify(r)
		if ref != nil {
			a.refuse(w, r, http.StatusUnauthorized, ref, Identity{})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// Require serves next when the request's identity (authenticated here
// unless Authenticate did) has a role granting need: 401 when it is not
// authenticated, 403 when it lacks the role.
func (a *Authenticator) Require(need Role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := IdentityFrom(r.Context())
		if !ok {
			var ref *Refusal
			if id, ref = a.identify(r); ref != nil {
				a.refuse(w, r, http.StatusUnauthorized, ref, Identity{})
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		}
		if !id.Has(need) {
			if a.s.OnDenied != nil {
				a.s.OnDenied(r, id, need)
			}
			a.refuse(w, r, http.StatusForbidden, &Refusal{Reason: ForbiddenRole,
				Message: fmt.Sprintf("%s (roles: %s) may not do this: it needs the %s role", id.Name, id.roleNames(), need)}, id)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// identify authenticates r.
func (a *Authenticator) identify(r *http.Request) (Identity, *Refusal) {
	if a.cfg.Disabled {
		return Anonymous, nil
	}
	if !a.configured() {
		return Identity{}, &Refusal{Reason: NotConfigured, Message: "authentication is on, but weft has no token and no OIDC issuer configured. " + howToConfigure}
	}
	header := r.Header.Get("Authorization")
	if header == "" {
		return Identity{}, &Refusal{Reason: NoToken, Message: `no credentials: send "Authorization: Bearer <token>"`}
	}
	scheme, raw, _ := strings.Cut(header, " ")
	raw = strings.TrimSpace(raw)
	if !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return Identity{}, &Refusal{Reason: BadToken, Message: `the Authorization header is not "Bearer <token>"`}
	}
	return a.identifyCredential(r.Context(), raw)
}

// identifyCredential authenticates a credential — a weft token or a JWT —
// wherever the request carried it (the Authorization header, or the
// console's session cookie).
func (a *Authenticator) identifyCredential(ctx context.Context, raw string) (Identity, *Refusal) {
	if strings.HasPrefix(raw, TokenPrefix) {
		if id, ok := a.tokens.match(raw); ok {
			return id, nil
		}
		return Identity{}, &Refusal{Reason: BadToken, Message: "unknown token"}
	}
	if a.oidc == nil {
		return Identity{}, &Refusal{Reason: BadToken, Message: "not a weft token (" + TokenPrefix + "…), and no OIDC issuer is configured"}
	}
	return a.oidc.verify(ctx, raw)
}
