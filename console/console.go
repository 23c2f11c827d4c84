package console

import (
	"bytes"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/weft-sh/weft/internal/auth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Settings are what the wiring passes in.
type Settings struct {
	// Auth checks the login form's credential. Required.
	Auth *auth.Authenticator
	// Logger receives a line per page that failed to render.
	Logger zerolog.Logger
	// Refresh is how often an open page reloads its data. Default 10 s.
	Refresh time.Duration
	// Now is the clock of the pages' "updated" line. Default time.Now.
	Now func() time.Time
}

// Console serves the web console's pages.
type Console struct {
	data    Data
	s       Settings
	pages   map[string]*template.Template
	csrfKey []byte
	assets  http.Handler
}

// Route is one of the console's routes: its pattern (as http.ServeMux
// takes it) and handler. The wiring wraps each with the role the route
// table gives its pattern (cmd/weft/apiauth.go).
type Route struct {
	Pattern string
	Handler http.Handler
}

// New builds the console; it does no I/O.
func New(d Data, s Settings) (*Console, error) {
	if s.Auth == nil {
		return nil, errors.New("console: no authenticator")
	}
	if d.Stuck == nil || d.Order == nil || d.Findings == nil || d.Queues == nil || d.Acknowledge == nil {
		return nil, errors.New("console: a data source is missing")
	}
	if s.Refresh <= 0 {
		s.Refresh = 10 * time.Second
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	// The CSRF tokens' key lives as long as the process: a restart makes
	// open pages' forms stale, and a reload mends them.
	key := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, fmt.Errorf("console: csrf key: %w", err)
	}
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}
	return &Console{data: d, s: s, pages: pages, csrfKey: key,
		assets: http.StripPrefix("/assets/", http.FileServer(http.FS(sub)))}, nil
}

// Routes are the console's routes. Their patterns are in the route table
// with their roles: the pages need viewer, acknowledging needs operator,
// and the login page and the assets are open.
func (c *Console) Routes() []Route {
	return []Route{
		{"GET /{$}", http.HandlerFunc(c.stuckPage)},
		{"GET /orders/{id}", http.HandlerFunc(c.orderPage)},
		{"GET /findings", http.HandlerFunc(c.findingsPage)},
		{"GET /queues", http.HandlerFunc(c.queuesPage)},
		{"GET /audit", http.HandlerFunc(c.auditPage)},
		{"POST /findings/{id}/ack", http.HandlerFunc(c.ack)},
		{"GET /login", http.HandlerFunc(c.loginPage)},
		{"POST /login", http.HandlerFunc(c.login)},
		{"POST /logout", http.HandlerFunc(c.logout)},
		{"GET /assets/", c.assetsHandler()},
	}
}

// assetsHandler serves the embedded CSS and JavaScript. They are the same
// for everyone and hold no data, so they may be cached for an hour.
func (c *Console) assetsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		c.assets.ServeHTTP(w, r)
	})
}

// securityHeaders are set on every page: nothing loads from elsewhere, no
// inline script runs, the pages cannot be framed, order ids do not leak
// in a Referer to other sites, and order data is not cached. (Not
// "no-referrer": with it browsers send "Origin: null" on the console's own
// form posts, which the CSRF check must refuse.)
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
}

// render writes page with data, or a 500 when it fails to render (the
// page is rendered into a buffer first, so a half-written page never
// goes out).
func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, page string, v pageData) {
	v.Refresh = int(c.s.Refresh / time.Millisecond)
	v.Updated = c.s.Now().UTC()
	if v.User.Name == "" {
		if id, ok := auth.IdentityFrom(r.Context()); ok {
			v.User = user(id)
		}
	}
	if v.User.Name != "" && v.CSRF == "" {
		v.CSRF = c.csrfToken(r)
	}
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.s.Logger.Error().Err(err).Str("page", page).Msg("console page not rendered")
		securityHeaders(w.Header())
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "console page not rendered: see weft's log\n")
		return
	}
	securityHeaders(w.Header())
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// pageData is what every page's template gets.
type pageData struct {
	Title string
	// Nav is the menu entry to highlight.
	Nav     string
	User    userView
	CSRF    string
	Refresh int // milliseconds
	Updated time.Time
	// Error is shown above the page's content.
	Error string
	// Page is the page's own data.
	Page any
}

// userView is who is logged in, for the header and the ack forms.
type userView struct {
	Name     string
	Roles    string
	Operator bool
	// Session is false when authentication is disabled: nobody logs in.
	Session bool
}

func user(id auth.Identity) userView {
	roles := ""
	for i, r := range id.Roles {
		if i > 0 {
			roles += ", "
		}
		roles += string(r)
	}
	return userView{Name: id.Name, Roles: roles, Operator: id.Has(auth.Operator), Session: id.Method != auth.MethodNone}
}
