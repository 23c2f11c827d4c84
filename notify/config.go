package notify

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/weft-sh/weft/internal/config"
)

// Formats of a webhook's messages.
const (
	FormatSlack = "slack" // {"text": …}: Slack incoming webhooks, Mattermost, Rocket.Chat, Teams workflows
	FormatJSON  = "json"  // {"source": "weft", "notifications": [{event, finding, links}]}
)

// Config is the alerts block of weft.yaml: where `weft run` sends findings.
type Config struct {
	// Webhooks receive a message when a finding opens and when it
	// resolves. Default none.
	Webhooks []Webhook `yaml:"webhooks"`
	// LinkURL is the base URL weft's HTTP API is reached at by whoever
	// reads the messages (https://weft.example.com): messages link the
	// order (/api/v1/orders/ID) and its findings. Default "": no links.
	LinkURL string `yaml:"link_url"`
}

// Webhook is one receiver.
type Webhook struct {
	// Name identifies the webhook in logs and metrics. Required, unique.
	Name string `yaml:"name"`
	// URL receives the messages (POST). Required unless URLEnv is set.
	URL string `yaml:"url"`
	// URLEnv names an environment variable holding the URL instead, for
	// URLs that are secrets (a Slack incoming webhook). While it is unset
	// or empty the webhook is off, and `weft run` says so at start, so one
	// config serves environments with and without the receiver.
	URLEnv string `yaml:"url_env"`
	// Format is slack or json. Default json.
	Format string `yaml:"format"`
	// Kinds are the finding kinds sent (stuck, gap, …). Default all.
	Kinds []string `yaml:"kinds"`
	// MinInterval is the least time between two messages; the findings that
	// open or resolve meanwhile go in the next message, up to 50 each.
	// Default 1s (Slack accepts about one message a second).
	MinInterval time.Duration `yaml:"min_interval"`
	// Timeout bounds one delivery attempt. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Retries after a failed attempt (a 5xx or 429 answer, a network error
	// or a timeout), waiting 1s, 2s, 4s… up to a minute. Default 5.
	Retries int `yaml:"retries"`
}

// Default is no webhook.
func Default() Config { return Config{} }

var name = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// withDefaults fills a webhook's unset keys.
func (w Webhook) withDefaults() Webhook {
	if w.Format == "" {
		w.Format = FormatJSON
	}
	if w.MinInterval == 0 {
		w.MinInterval = time.Second
	}
	if w.Timeout == 0 {
		w.Timeout = 10 * time.Second
	}
	if w.Retries == 0 {
		w.Retries = 5
	}
	return w
}

// Validate reports every problem with its key; kinds are the finding
// kinds a webhook may name.
func (c Config) Validate(kinds []string) error {
	var p config.Problems
	known := map[string]bool{}
	for _, k := range kinds {
		known[k] = true
	}
	names := map[string]bool{}
	for i, w := range c.Webhooks {
		path := fmt.Sprintf("webhooks[%d]", i)
		if !name.MatchString(w.Name) {
			p.Addf(path+".name", "%q is not a name ([a-z0-9][a-z0-9_-]*)", w.Name)
		}
		if names[w.Name] {
			p.Addf(path+".name", "webhook %q is defined twice", w.Name)
		}
		names[w.Name] = true
		switch {
		case w.URL != "" && w.URLEnv != "":
			p.Addf(path+".url", "set url or url_env, not both")
		case w.URL == "" && w.URLEnv == "":
			p.Addf(path+".url", "required (or url_env)")
		case w.URL != "":
			if err := checkURL(w.URL); err != nil {
				p.Addf(path+".url", "%q: %v", w.URL, err)
			}
		}
		switch w.Format {
		case "", FormatSlack, FormatJSON:
		default:
			p.Addf(path+".format", "%q is not slack or json", w.Format)
		}
		for _, k := range w.Kinds {
			if !known[k] {
				p.Addf(path+".kinds", "%q is not a finding kind", k)
			}
		}
		if w.MinInterval < 0 || w.Timeout < 0 || w.Retries < 0 {
			p.Addf(path, "min_interval, timeout and retries must not be negative")
		}
	}
	if c.LinkURL != "" {
		if err := checkURL(c.LinkURL); err != nil {
			p.Addf("link_url", "%q: %v", c.LinkURL, err)
		}
	}
	return p.Err()
}

// checkURL does not repeat the URL: it may be a secret.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("not an http(s) URL")
	}
	return nil
}

// resolveURL is the webhook's URL, read from its environment variable
// when URLEnv is set ("" when that is empty: the webhook is off).
func (w Webhook) resolveURL() (string, error) {
	if w.URLEnv == "" {
		return w.URL, nil
	}
	u := os.Getenv(w.URLEnv)
	if u == "" {
		return "", nil
	}
	if err := checkURL(u); err != nil {
		return "", fmt.Errorf("webhook %s: %s: %w", w.Name, w.URLEnv, err)
	}
	return u, nil
}
