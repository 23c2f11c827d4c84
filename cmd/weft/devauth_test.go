package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestDevTokens: `weft dev` makes one token per role on first use, keeps
// them private in its data directory, reuses them on the next run, and
// configures only their hashes.
func TestDevTokens(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	tokens, err := devTokens(&cfg, dir)
	require.NoError(t, err)
	require.Len(t, tokens, len(auth.Roles))
	for _, r := range auth.Roles {
		assert.True(t, auth.ValidToken(tokens[r]), r)
		fi, err := os.Stat(filepath.Join(dir, "auth", string(r)+".token"))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	}
	assert.Equal(t, []auth.Token{
		{Name: "dev-viewer", Roles: []auth.Role{auth.Viewer}, Hash: auth.HashToken(tokens[auth.Viewer])},
		{Name: "dev-operator", Roles: []auth.Role{auth.Operator}, Hash: auth.HashToken(tokens[auth.Operator])},
		{Name: "dev-auditor", Roles: []auth.Role{auth.Auditor}, Hash: auth.HashToken(tokens[auth.Auditor])},
	}, cfg.HTTP.Auth.Tokens)

	cfgPath := filepath.Join(dir, "weft.yaml")
	require.NoError(t, writeDevConfig(cfgPath, cfg))
	b, err := os.ReadFile(cfgPath)
	require.NoError(t, err)
	for _, tok := range tokens {
		assert.NotContains(t, string(b), tok, "the config holds hashes, not tokens")
	}
	loaded, err := loadConfig(cfgPath)
	require.NoError(t, err)
	require.NoError(t, loaded.Validate())
	assert.Equal(t, cfg.HTTP.Auth.Tokens, loaded.HTTP.Auth.Tokens)
	assert.False(t, loaded.HTTP.Auth.Disabled, "make run keeps authentication on")

	again := DefaultConfig()
	tokens2, err := devTokens(&again, dir)
	require.NoError(t, err)
	assert.Equal(t, tokens, tokens2, "the next run reuses them")
}

// curlLine is a curl command of the banner: an optional header and a URL.
var curlLine = regexp.MustCompile(`curl (?:-H "([^"]+)" )?(http://\S+)`)

// TestDevBannerCommandsWork: the HTTP commands the banner of `weft dev`
// suggests answer 200 from the API served with the config it wrote, and
// its `weft auth token` suggestion makes a token.
func TestDevBannerCommandsWork(t *testing.T) {
	store := testenv.Store(t)
	dir := t.TempDir()
	cfg := DefaultConfig()
	tokens, err := devTokens(&cfg, dir)
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "weft.yaml")
	require.NoError(t, writeDevConfig(cfgPath, cfg))
	loaded, err := loadConfig(cfgPath)
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	authn, err := startAuth(context.Background(), loaded.HTTP.Auth, nil, reg, zerolog.Nop())
	require.NoError(t, err)
	engine := consistency.NewEngine(store, cfg.Consistency.AllWorkflows())
	cons, err := newConsole(engine, store, nil, authn, zerolog.Nop(), nil)
	require.NoError(t, err)
	srv := httptest.NewServer(newAPI(engine, store, nil, nil, authn, reg, zerolog.Nop(), false, cons, nil, nil))
	defer srv.Close()
	cfg.HTTP.Listen = strings.TrimPrefix(srv.URL, "http://")

	var out bytes.Buffer
	printDevBanner(&out, cfgPath, cfg, devAddrs{kafka: "127.0.0.1:19092", clickhouse: "127.0.0.1:19000", clickhouseHTTP: "127.0.0.1:18123"}, &demo.Manifest{}, tokens)
	banner := out.String()
	for _, r := range auth.Roles {
		assert.Contains(t, banner, tokens[r], "the banner shows the %s token", r)
	}

	curls := curlLine.FindAllStringSubmatch(banner, -1)
	require.GreaterOrEqual(t, len(curls), 2, banner)
	for _, c := range curls {
		req, err := http.NewRequest(http.MethodGet, c[2], nil)
		require.NoError(t, err)
		if c[1] != "" {
			name, value, ok := strings.Cut(c[1], ": ")
			require.True(t, ok, c[1])
			req.Header.Set(name, value)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, c[0])
	}

	// The console's URL, logged into with the banner's operator token.
	m := regexp.MustCompile(`Web console:\s+(http://\S+)`).FindStringSubmatch(banner)
	require.NotNil(t, m, banner)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar}
	resp, err := browser.PostForm(m[1]+"login", url.Values{"token": {tokens[auth.Operator]}})
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(page), "Stuck orders", "logged in, on the stuck list")
	assert.Contains(t, string(page), "dev-operator")

	require.Contains(t, banner, " auth token --name NAME --role ROLE")
	tokOut, err := runCmd(t, "auth", "token", "--name", "someone", "--role", "viewer")
	require.NoError(t, err)
	assert.Contains(t, tokOut, "- name: someone")
}
