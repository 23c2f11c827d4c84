package auth

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/weft-sh/weft/internal/config"
)

// Role is what an identity may do.
type Role string

// The roles. Every role may read (viewer's routes); operator and auditor
// add their own.
const (
	// Viewer reads: stuck orders, orders, findings, events, lag.
	Viewer Role = "viewer"
	// Operator is a viewer who also acts: acknowledges findings (and
	// replays and redrives when weft has them), and reads /debug/pprof.
	Operator Role = "operator"
	// Auditor is a viewer who also runs the audit routes: verify, export,
	// erase.
	Auditor Role = "auditor"
)

// Roles are every role, in the order docs list them.
var Roles = []Role{Viewer, Operator, Auditor}

func (r Role) valid() bool { return slices.Contains(Roles, r) }

// grants reports whether holding r allows what needs need: every role
// includes viewer's reads.
func (r Role) grants(need Role) bool { return r == need || need == Viewer && r.valid() }

// Config is the http.auth block.
type Config struct {
	// Disabled turns authentication off: every /api/ route and
	// /debug/pprof/ answers whoever reaches the port, acting as
	// "anonymous", and weft logs a warning at every start. Default false.
	Disabled bool `yaml:"disabled"`
	// Tokens are the bearer tokens weft accepts, each with a name (the
	// identity its actions are recorded under), its roles and the SHA-256
	// of the token (`weft auth token` makes one). Default none.
	Tokens []Token `yaml:"tokens"`
	// TokensFile is a YAML file holding more tokens as the same list, read
	// when weft starts (so the config can be shared without them). Default
	// "" (none).
	TokensFile string `yaml:"tokens_file"`
	// OIDC accepts JWTs signed by an OpenID Connect issuer. Default off.
	OIDC OIDCConfig `yaml:"oidc"`
}

// Token is one bearer token, as configured: never the token itself.
type Token struct {
	// Name is who the token is: what acknowledgements and the
	// operator-actions log record. Letters, digits, '.', '_', '@', '-'.
	Name string `yaml:"name"`
	// Roles are what it may do: viewer, operator, auditor.
	Roles []Role `yaml:"roles"`
	// Hash is "sha256:" and the hex SHA-256 of the token.
	Hash string `yaml:"hash"`
}

// OIDCConfig is the http.auth.oidc block.
type OIDCConfig struct {
	// Issuer is the identity provider's issuer URL (https; http only on
	// loopback). weft discovers its keys at start. Default "" (OIDC off).
	Issuer string `yaml:"issuer"`
	// Audience is the value a token's "aud" must contain: the client ID or
	// API audience the provider issues weft's tokens for. Required with
	// issuer.
	Audience string `yaml:"audience"`
	// RolesClaim is the claim holding the caller's roles or groups, a list
	// of strings or one string; a dotted path reaches a nested claim
	// (realm_access.roles). Default "roles".
	RolesClaim string `yaml:"roles_claim"`
	// RoleMap maps the claim's values to weft roles ({weft-oncall:
	// operator}); values it does not name grant nothing. Empty: a value
	// that is a weft role's name grants that role. Default empty.
	RoleMap map[string]Role `yaml:"role_map"`
	// UsernameClaim is the claim naming the caller in acknowledgements and
	// the operator-actions log; "sub" when the token lacks it. Default
	// "preferred_username".
	UsernameClaim string `yaml:"username_claim"`
}

// Default returns the block's defaults: authentication on, no credentials.
func Default() Config {
	return Config{OIDC: OIDCConfig{RolesClaim: "roles", UsernameClaim: "preferred_username"}}
}

// enabled reports whether OIDC is configured.
func (o OIDCConfig) enabled() bool { return o.Issuer != "" }

var tokenName = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// Validate reports every problem with its key (tokens[1].roles[0]: …).
func (c Config) Validate() error {
	var p config.Problems
	checkTokens(&p, "tokens", c.Tokens)
	p.Merge("oidc", c.OIDC.Validate())
	return p.Err()
}

// Validate reports the token's problems with their keys (roles[0]: …).
func (t Token) Validate() error {
	var p config.Problems
	if !tokenName.MatchString(t.Name) {
		p.Addf("name", "%q: want 1 to 64 letters, digits, '.', '_', '@' or '-'", t.Name)
	}
	if len(t.Roles) == 0 {
		p.Addf("roles", "required: one or more of %s", roleList())
	}
	for k, r := range t.Roles {
		if !r.valid() {
			p.Addf(fmt.Sprintf("roles[%d]", k), "unknown role %q: want %s", r, roleList())
		}
	}
	if _, err := parseHash(t.Hash); err != nil {
		p.Addf("hash", "%v", err)
	}
	return p.Err()
}

// checkTokens records the problems of a list of tokens at path[i]: each
// one's, and names or tokens listed twice.
func checkTokens(p *config.Problems, path string, ts []Token) {
	names, hashes := map[string]int{}, map[string]int{}
	for i, t := range ts {
		at := fmt.Sprintf("%s[%d]", path, i)
		p.Merge(at, t.Validate())
		if j, dup := names[t.Name]; dup {
			p.Addf(at+".name", "%q is also %s[%d]'s name", t.Name, path, j)
		} else {
			names[t.Name] = i
		}
		if j, dup := hashes[t.Hash]; dup {
			p.Addf(at+".hash", "the same token as %s[%d]", path, j)
		} else {
			hashes[t.Hash] = i
		}
	}
}

// Validate reports the block's problems with their keys.
func (o OIDCConfig) Validate() error {
	var p config.Problems
	if !o.enabled() {
		if o.Audience != "" || len(o.RoleMap) > 0 {
			p.Addf("issuer", "required when audience or role_map is set (empty: OIDC off)")
		}
		return p.Err()
	}
	if err := checkIssuer(o.Issuer); err != nil {
		p.Addf("issuer", "%v", err)
	}
	if o.Audience == "" {
		p.Addf("audience", "required with issuer: the client ID or API audience weft's tokens are issued for")
	}
	if o.RolesClaim == "" {
		p.Addf("roles_claim", "required (default roles)")
	}
	if o.UsernameClaim == "" {
		p.Addf("username_claim", "required (default preferred_username)")
	}
	for _, k := range slices.Sorted(maps.Keys(o.RoleMap)) {
		if r := o.RoleMap[k]; !r.valid() {
			p.Addf("role_map."+k, "unknown role %q: want %s", r, roleList())
		}
	}
	return p.Err()
}

// checkIssuer accepts an https URL, or http on a loopback host.
func checkIssuer(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("%q: want an https:// URL", s)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && loopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%q: want an https:// URL (http only on loopback)", s)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func roleList() string {
	s := make([]string, len(Roles))
	for i, r := range Roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}
