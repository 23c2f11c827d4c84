package console

import (
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/weft-sh/weft/queuehealth"

	"github.com/weft-sh/weft/internal/humanize"
)

// pageNames are the pages, each templates/<name>.html inside layout.html.
var pageNames = []string{"stuck", "order", "findings", "queues", "audit", "login", "refused"}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

var funcs = template.FuncMap{
	"human":   humanize.Duration,
	"seconds": func(s float64) string { return humanize.Seconds(s) },
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"clock":  func(t time.Time) string { return t.UTC().Format("15:04:05") },
	"join":   strings.Join,
	"vector": vectorText,
	// query is the query q with each key set to its value (removed
	// when empty), less the one-off "acked".
	"query": func(q url.Values, kv ...string) string {
		out := url.Values{}
		for k, v := range q {
			out[k] = v
		}
		out.Del("acked")
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				out.Del(kv[i])
			} else {
				out.Set(kv[i], kv[i+1])
			}
		}
		if len(out) == 0 {
			return "?"
		}
		return "?" + out.Encode()
	},
	// sortDir is the direction a click on key's header sorts in: descending first for
	// durations and times, and the other way when already sorted by it.
	"sortDir": func(cur string, desc bool, key string) string {
		if cur == key {
			if desc {
				return "asc"
			}
			return "desc"
		}
		switch key {
		case "in_step", "sla", "at":
			return "desc"
		}
		return "asc"
	},
	"arrow": func(cur string, desc bool, key string) string {
		if cur != key {
			return ""
		}
		if desc {
			return " ▼"
		}
		return " ▲"
	},
	"split": strings.Fields,
	// lagging counts a group's partitions with records left to read.
	"lagging": func(ps []queuehealth.PartitionLag) int {
		n := 0
		for _, p := range ps {
			if p.LagMessages > 0 {
				n++
			}
		}
		return n
	},
}
