package auth

import (
	"context"
	"net/http"
	"strings"
)

// Browsers cannot send an Authorization header from a link or a form, so
// the console (docs/console.md) keeps the credential a person logged in
// with in an HttpOnly cookie and checks it here on every request, exactly
// as a bearer token is checked: a token removed from the configuration,
// or a JWT past its expiry, ends the session on the next request.

// Login checks a credential a person typed into the console's login form:
// the identity, or the refusal (counted and logged, as the API's are).
func (a *Authenticator) Login(r *http.Request, credential string) (Identity, *Refusal) {
	if a.cfg.Disabled {
		return Anonymous, nil
	}
	credential = strings.TrimSpace(credential)
	var id Identity
	var ref *Refusal
	switch {
	case !a.configured():
		ref = &Refusal{Reason: NotConfigured, Message: "authentication is on, but weft has no token and no OIDC issuer configured. " + howToConfigure}
	case credential == "":
		ref = &Refusal{Reason: NoToken, Message: "no token given"}
	default:
		id, ref = a.identifyCredential(r.Context(), credential)
	}
	if ref != nil {
		a.note(r, http.StatusUnauthorized, ref, Identity{})
	}
	return id, ref
}

// Disabled reports whether authentication is turned off (http.auth.disabled):
// the console then needs no login.
func (a *Authenticator) Disabled() bool { return a.cfg.Disabled }

// RefusedFunc answers a browser request the cookie did not let in: code is
// 401 (no session, or its credential is no longer valid) or 403 (the
// identity lacks the role).
type RefusedFunc func(w http.ResponseWriter, r *http.Request, code int, ref *Refusal)

// RequireCookie serves next when the credential in the cookie named
// cookie authenticates an identity with a role granting need, with the
// identity in the request's context (IdentityFrom). Otherwise refused
// answers: 401 without a valid credential, 403 without the role. A
// request that carries no cookie at all is a browser that has not logged
// in yet, not an access attempt: it is refused without being counted or
// logged. Every other refusal is counted and logged as the API's, and a
// 403 goes to Settings.OnDenied.
func (a *Authenticator) RequireCookie(cookie string, need Role, refused RefusedFunc, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := IdentityFrom(r.Context())
		if !ok {
			var ref *Refusal
			id, ref = a.identifyCookie(r, cookie)
			if ref != nil {
				if ref.Reason != NoToken {
					a.note(r, http.StatusUnauthorized, ref, Identity{})
				}
				refused(w, r, http.StatusUnauthorized, ref)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		}
		if !id.Has(need) {
			if a.s.OnDenied != nil {
				a.s.OnDenied(r, id, need)
			}
			ref := &Refusal{Reason: ForbiddenRole,
				Message: id.Name + " (roles: " + id.roleNames() + ") may not do this: it needs the " + string(need) + " role"}
			a.note(r, http.StatusForbidden, ref, id)
			refused(w, r, http.StatusForbidden, ref)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// identifyCookie authenticates r by the credential in its cookie.
func (a *Authenticator) identifyCookie(r *http.Request, cookie string) (Identity, *Refusal) {
	if a.cfg.Disabled {
		return Anonymous, nil
	}
	c, err := r.Cookie(cookie)
	if err != nil || c.Value == "" {
		return Identity{}, &Refusal{Reason: NoToken, Message: "not logged in"}
	}
	if !a.configured() {
		return Identity{}, &Refusal{Reason: NotConfigured, Message: "authentication is on, but weft has no token and no OIDC issuer configured. " + howToConfigure}
	}
	return a.identifyCredential(r.Context(), c.Value)
}
