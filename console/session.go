package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/weft-sh/weft/internal/auth"
)

// CookieName is the session cookie. It holds the credential the person
// logged in with (a weft token or a JWT), HttpOnly so no script reads
// it, SameSite=Strict so no other site's page sends it, Secure when
// weft serves HTTPS; internal/auth checks it on every request as it
// checks a bearer token (docs/security.md, "The console").
const CookieName = "weft_session"

// sessionMaxAge is how long the browser keeps the cookie. The credential
// itself may end sooner (a JWT's expiry, a token removed).
const sessionMaxAge = 12 * time.Hour

// csrfField is the form field (and, for scripts, the X-CSRF-Token header)
// that carries the CSRF token.
const csrfField = "csrf"

// csrfToken is the CSRF token of r's session: an HMAC of the session's
// credential under the process's key. A page of another site can neither
// read it (the same-origin policy) nor compute it.
func (c *Console) csrfToken(r *http.Request) string {
	session := "anonymous" // authentication disabled: one token per process
	if ck, err := r.Cookie(CookieName); err == nil {
		session = ck.Value
	}
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte("weft console csrf\x00"))
	m.Write([]byte(session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF reports why a state-changing request is refused, or "": it
// must come from one of weft's own pages (Sec-Fetch-Site or Origin) and
// carry its session's CSRF token.
func (c *Console) checkCSRF(r *http.Request) string {
	if why := crossSite(r); why != "" {
		return why
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	if got == "" {
		return "the form carries no CSRF token: reload the page and try again"
	}
	if !hmac.Equal([]byte(got), []byte(c.csrfToken(r))) {
		return "the form's CSRF token is not this session's: reload the page and try again"
	}
	return ""
}

// crossSite says why r did not come from a page of this weft, or "". It
// trusts the browser's Sec-Fetch-Site, else compares Origin with Host;
// a request with neither (not a browser's) passes to the token check.
func crossSite(r *http.Request) string {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return "refused: the request came from another site (" + site + ")"
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return "refused: the request came from another origin (" + o + ")"
		}
	}
	return ""
}

// loginView is the login page's data.
type loginView struct {
	Next     string
	Disabled bool
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", pageData{Title: "Log in", Page: loginView{Next: safeNext(r.URL.Query().Get("next")),
		Disabled: c.s.Auth.Disabled()}})
}

// login checks the token typed in and, when it authenticates, keeps it in
// the session cookie. A refusal is counted and logged by internal/auth.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	view := pageData{Title: "Log in", Page: loginView{Next: next}}
	if why := crossSite(r); why != "" {
		view.Error = why
		c.render(w, r, http.StatusForbidden, "login", view)
		return
	}
	credential := strings.TrimSpace(r.PostFormValue("token"))
	id, ref := c.s.Auth.Login(r, credential)
	if ref != nil {
		view.Error = "not logged in: " + ref.Message
		c.render(w, r, http.StatusUnauthorized, "login", view)
		return
	}
	if id.Method != auth.MethodNone {
		http.SetCookie(w, &http.Cookie{Name: CookieName, Value: credential, Path: "/", MaxAge: int(sessionMaxAge / time.Second),
			HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	}
	c.s.Logger.Info().Str("identity", id.Name).Str("method", id.Method).Str("remote", r.RemoteAddr).Msg("console login")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout forgets the session cookie. The credential stays valid (it is
// the token's or the identity provider's to revoke): logging out only
// takes it off this browser.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if why := c.checkCSRF(r); why != "" {
		c.refusedPage(w, r, http.StatusForbidden, why)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext is where to go after logging in: a path of this site, never
// another site's URL ("//evil.example", "https://…", "/\evil").
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}

// Refused answers a request internal/auth did not let in
// (auth.RequireCookie): a page request without a valid session goes to
// the login page and comes back after; anything else gets a page saying
// why, with the status.
func (c *Console) Refused(w http.ResponseWriter, r *http.Request, code int, ref *auth.Refusal) {
	if code == http.StatusUnauthorized && r.Method == http.MethodGet {
		// A link followed from another site (a chat message, an alert)
		// arrives without the SameSite=Strict cookie. One reload from
		// this site's own page brings it along; only a browser that has
		// no session then goes to the login page.
		if ref.Reason == auth.NoToken && r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			securityHeaders(w.Header())
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0"><title>weft</title><p>Opening…</p>`))
			return
		}
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	c.refusedPage(w, r, code, ref.Message)
}

// refusedPage is a page saying why a request was refused.
func (c *Console) refusedPage(w http.ResponseWriter, r *http.Request, code int, why string) {
	c.render(w, r, code, "refused", pageData{Title: http.StatusText(code), Error: why, Page: http.StatusText(code)})
}
