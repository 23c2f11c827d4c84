package alerts

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden pins the generated files for the built-in workflows:
// `go test ./alerts -run TestGolden -update` rewrites them after an
// intended change.
func TestGolden(t *testing.T) {
	groups, err := Rules(DefaultOptions())
	require.NoError(t, err)
	dir := t.TempDir()
	paths, err := Write(dir, groups)
	require.NoError(t, err)
	require.Len(t, paths, 2)
	for _, p := range paths {
		got, err := os.ReadFile(p)
		require.NoError(t, err)
		golden := filepath.Join("testdata", filepath.Base(p))
		if *update {
			require.NoError(t, os.WriteFile(golden, got, 0o644))
		}
		want, err := os.ReadFile(golden)
		require.NoError(t, err, "run with -update to create it")
		assert.Equal(t, string(want), string(got), "run with -update after an intended change")
	}
}

// TestEveryRuleComplete fails if a rule lacks what an on-call engineer
// reads first, or links a runbook section docs/runbook.md does not have.
func TestEveryRuleComplete(t *testing.T) {
	o := DefaultOptions()
	o.DashboardURL = "https://grafana.example/"
	groups, err := Rules(o)
	require.NoError(t, err)
	runbook, err := os.ReadFile("../docs/runbook.md")
	require.NoError(t, err)
	anchors := headingAnchors(string(runbook))
	n := 0
	for _, g := range groups {
		for _, r := range g.Rules {
			n++
			t.Run(g.Name+"/"+r.Alert, func(t *testing.T) {
				assert.Regexp(t, `^Weft[A-Za-z]+$`, r.Alert)
				assert.Contains(t, []string{SeverityCritical, SeverityWarning}, r.Labels["severity"])
				for _, k := range []string{"summary", "description", "runbook_url", "dashboard_url"} {
					assert.NotEmpty(t, r.Annotations[k], k)
				}
				assert.Equal(t, "https://grafana.example/d/weft-consistency", r.Annotations["dashboard_url"])
				url, anchor, ok := strings.Cut(r.Annotations["runbook_url"], "#")
				require.True(t, ok, "runbook_url without an anchor")
				assert.Equal(t, DefaultRunbookURL, url)
				assert.True(t, anchors[anchor], "docs/runbook.md has no heading for #%s", anchor)
			})
		}
	}
	assert.Equal(t, 1+len(o.Workflows)+2+9+3+1, n) // one WeftStuckOrderPastSLA per workflow
}

// TestStuckPastSLAScale: the threshold is the factor times the
// workflow's longest non-terminal SLA.
func TestStuckPastSLAScale(t *testing.T) {
	o := DefaultOptions()
	o.SLAFactor = 2
	groups, err := Rules(o)
	require.NoError(t, err)
	var exprs []string
	for _, r := range groups[0].Rules {
		if r.Alert == "WeftStuckOrderPastSLA" {
			exprs = append(exprs, r.Expr)
		}
	}
	require.Len(t, exprs, len(o.Workflows))
	for i, w := range o.Workflows {
		var longest time.Duration
		for _, s := range w.Steps {
			if !s.Terminal {
				longest = max(longest, s.SLA)
			}
		}
		assert.Contains(t, exprs[i], `{workflow="`+w.Name+`"}`)
		assert.True(t, strings.HasSuffix(exprs[i], " > "+strconv.FormatInt(int64(2*longest.Seconds()), 10)), exprs[i])
	}
}

func TestOptionsValidate(t *testing.T) {
	o := DefaultOptions()
	o.Job = `we"ft`
	o.TapGroup = ""
	o.RunbookURL = "x#y"
	o.SLAFactor = 0
	o.StuckThreshold = -1
	_, err := Rules(o)
	require.Error(t, err)
	for _, key := range []string{"job", "tap_group", "runbook_url", "sla_factor", "thresholds"} {
		assert.Contains(t, err.Error(), key)
	}
}

var heading = regexp.MustCompile(`(?m)^#{1,6} +(.+)$`)

// headingAnchors are the anchors GitHub gives a Markdown file's headings:
// lower case, punctuation but - and _ dropped, spaces as -.
func headingAnchors(md string) map[string]bool {
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(md, -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(m[1])) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}
