package notify

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/weft-sh/weft/consistency"
)

// Events of a notification.
const (
	EventOpened   = "opened"
	EventResolved = "resolved"
)

// maxPerMessage bounds the findings one message carries; the rest wait
// for the next.
const maxPerMessage = 50

// Notification is one finding's open or resolve, as the json format sends
// it.
type Notification struct {
	Event   string              `json:"event"`
	Finding consistency.Finding `json:"finding"`
	Links   Links               `json:"links,omitzero"`
}

// Links point at weft's API (Config.LinkURL).
type Links struct {
	Order    string `json:"order,omitempty"`
	Findings string `json:"findings,omitempty"`
}

func links(base, orderID string) Links {
	if base == "" {
		return Links{}
	}
	base = strings.TrimSuffix(base, "/")
	return Links{
		Order:    base + "/api/v1/orders/" + url.PathEscape(orderID),
		Findings: base + "/api/v1/findings?status=all&order=" + url.QueryEscape(orderID),
	}
}

// jsonMessage is the body of the json format.
type jsonMessage struct {
	Source        string         `json:"source"`
	Notifications []Notification `json:"notifications"`
}

// body renders ns in format.
func body(format string, ns []Notification) ([]byte, error) {
	if format == FormatSlack {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{slackText(ns)})
	}
	return json.Marshal(jsonMessage{Source: "weft", Notifications: ns})
}

// slackText is one line per finding: what happened, to which order, why,
// and the links.
func slackText(ns []Notification) string {
	var b strings.Builder
	for i, n := range ns {
		if i > 0 {
			b.WriteByte('\n')
		}
		f := n.Finding
		mark := ":red_circle:"
		if n.Event == EventResolved {
			mark = ":large_green_circle:"
		}
		fmt.Fprintf(&b, "%s *%s %s*: order `%s`", mark, slackEscape(f.Kind), n.Event, slackEscape(f.OrderID))
		if f.Workflow != "" {
			where := f.Workflow
			if f.Step != "" {
				where += " / " + f.Step
			}
			fmt.Fprintf(&b, " (%s)", slackEscape(where))
		}
		if f.Reason != "" && n.Event == EventOpened {
			fmt.Fprintf(&b, " — *%s*", slackEscape(f.Reason))
		}
		if n.Event == EventOpened {
			fmt.Fprintf(&b, "\n> %s", slackEscape(f.Summary))
		}
		if n.Links.Order != "" {
			fmt.Fprintf(&b, " <%s|order> · <%s|findings>", n.Links.Order, n.Links.Findings)
		}
	}
	return b.String()
}

// slackEscape escapes what Slack's mrkdwn reads as markup.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
