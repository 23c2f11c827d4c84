package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Pusher uploads dashboards through Grafana's HTTP API: it creates the
// folder when missing, then saves each dashboard into it, overwriting the
// version with the same UID.
type Pusher struct {
	// URL is Grafana's base URL, e.g. https://grafana.example.com.
	URL string
	// Token is a service account token (Editor on the folder at least).
	Token string
	// Client defaults to an http.Client with a 30 s timeout.
	Client *http.Client
}

// Push saves every dashboard into the folder of opts.
func (p Pusher) Push(ctx context.Context, ds []Dashboard, opts Options) error {
	base, err := url.Parse(strings.TrimRight(p.URL, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return fmt.Errorf("grafana url %q: want http(s)://host[:port]", p.URL)
	}
	if err := p.ensureFolder(ctx, base, opts); err != nil {
		return err
	}
	for _, d := range ds {
		body := map[string]any{
			"dashboard": d.Model,
			"folderUid": opts.FolderUID,
			"overwrite": true,
			"message":   "weft dashboards push",
		}
		if _, err := p.do(ctx, http.MethodPost, base.JoinPath("api", "dashboards", "db"), body, http.StatusOK); err != nil {
			return fmt.Errorf("save dashboard %s: %w", d.UID, err)
		}
	}
	return nil
}

func (p Pusher) ensureFolder(ctx context.Context, base *url.URL, opts Options) error {
	status, err := p.do(ctx, http.MethodGet, base.JoinPath("api", "folders", opts.FolderUID), nil, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return fmt.Errorf("look up folder %s: %w", opts.FolderUID, err)
	}
	if status == http.StatusOK {
		return nil
	}
	body := map[string]string{"uid": opts.FolderUID, "title": opts.Folder}
	if _, err := p.do(ctx, http.MethodPost, base.JoinPath("api", "folders"), body, http.StatusOK); err != nil {
		return fmt.Errorf("create folder %s: %w", opts.FolderUID, err)
	}
	return nil
}

// APIError is a Grafana answer with an unexpected status.
type APIError struct {
	Method, URL string
	Status      int
	Message     string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, e.Message)
}

// do sends a JSON request and returns the status, which must be one of ok.
func (p Pusher) do(ctx context.Context, method string, u *url.URL, body any, ok ...int) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if p.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.Token)
	}
	cl := p.Client
	if cl == nil {
		cl = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	for _, s := range ok {
		if resp.StatusCode == s {
			return s, nil
		}
	}
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(msg, &m) != nil || m.Message == "" {
		m.Message = strings.TrimSpace(string(msg))
	}
	return resp.StatusCode, &APIError{Method: method, URL: u.String(), Status: resp.StatusCode, Message: m.Message}
}

// ErrNoToken is returned by the command when no token is given.
var ErrNoToken = errors.New("a Grafana service account token is required (--token or GRAFANA_TOKEN)")
