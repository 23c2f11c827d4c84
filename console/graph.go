package console

import (
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strings"

	"github.com/weft-sh/weft/consistency"
)

// The chain graph's geometry, in SVG units (pixels at 100 %).
const (
	nodeW   = 270
	nodeH   = 42
	rowH    = 54
	indent  = 26
	margin  = 8
	elbowDX = 12 // where a parent's edge leaves its box, from its left side
)

// chainSVG draws an order's causal chain as a tree: one box per event, in
// the chain's order (each event under its cause, as `weft order` prints
// it), indented by its depth, with an edge from its cause drawn solid
// (explicit: causation id), dashed (trace parent span) or dotted
// (inferred from the workflow's step order). Hovering a box shows its
// version vector and where weft read it (the SVG <title>). evs must be in
// consistency.Engine.Chain's order: each event's cause is the nearest
// event before it one level up, which holds even when event ids repeat.
func chainSVG(evs []consistency.ChainEvent) template.HTML {
	if len(evs) == 0 {
		return ""
	}
	maxDepth := 0
	for _, e := range evs {
		maxDepth = max(maxDepth, e.Depth)
	}
	width := 2*margin + maxDepth*indent + nodeW
	height := 2*margin + (len(evs)-1)*rowH + nodeH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chain" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="causal chain of %d events">`,
		width, height, width, height, len(evs))
	b.WriteString(`<g class="edges">`)
	// last[d] is the row of the latest event at depth d: the cause of the
	// next event at depth d+1.
	last := map[int]int{}
	for i, e := range evs {
		if p, ok := last[e.Depth-1]; ok && e.Depth > 0 {
			x0 := margin + evs[p].Depth*indent + elbowDX
			y0 := margin + p*rowH + nodeH
			x1 := margin + e.Depth*indent
			y1 := margin + i*rowH + nodeH/2
			via := e.Via
			if via == "" {
				via = "explicit"
			}
			fmt.Fprintf(&b, `<path class="edge %s" d="M%d %d V%d H%d"><title>%s → %s (%s)</title></path>`,
				esc(via), x0, y0, y1, x1, esc(evs[p].Type), esc(e.Type), esc(viaText(via)))
		}
		last[e.Depth] = i
		// Deeper levels belong to an earlier subtree now.
		for d := range last {
			if d > e.Depth {
				delete(last, d)
			}
		}
	}
	b.WriteString(`</g><g class="nodes">`)
	for i, e := range evs {
		x := margin + e.Depth*indent
		y := margin + i*rowH
		fmt.Fprintf(&b, `<g class="node" data-event-id="%s" transform="translate(%d %d)">`, esc(e.EventID), x, y)
		fmt.Fprintf(&b, `<title>%s</title>`, esc(nodeTitle(e)))
		fmt.Fprintf(&b, `<rect width="%d" height="%d" rx="6"/>`, nodeW, nodeH)
		fmt.Fprintf(&b, `<text x="10" y="17" class="type">%s</text>`, esc(clip(e.Type, 34)))
		fmt.Fprintf(&b, `<text x="10" y="33" class="meta">%s · %s · %s</text>`, esc(clip(e.Service, 14)),
			e.EventTime.UTC().Format("15:04:05"), esc(clip(vectorText(e.VersionVector), 22)))
		b.WriteString(`</g>`)
	}
	b.WriteString(`</g></svg>`)
	return template.HTML(b.String()) //nolint:gosec // every value is escaped above
}

func viaText(via string) string {
	switch via {
	case "explicit":
		return "explicit: its causation id"
	case "trace":
		return "trace: its parent span"
	case "inferred":
		return "inferred from the workflow's step order"
	}
	return via
}

// nodeTitle is what hovering an event shows.
func nodeTitle(e consistency.ChainEvent) string {
	lines := []string{
		e.Type + " from " + e.Service,
		"version vector " + vectorText(e.VersionVector),
		fmt.Sprintf("%s/%d@%d", e.Topic, e.Partition, e.Offset),
		"event time " + e.EventTime.UTC().Format("2006-01-02 15:04:05.000Z"),
		"stored " + e.IngestedAt.UTC().Format("2006-01-02 15:04:05.000Z"),
		"event id " + e.EventID,
	}
	if e.CausationID != "" {
		lines = append(lines, "caused by "+e.CausationID)
	}
	if e.Via != "" {
		lines = append(lines, "edge: "+viaText(e.Via))
	}
	return strings.Join(lines, "\n")
}

// vectorText is a version vector as `weft order` prints it: {orders:3 payments:1}.
func vectorText(vv map[string]uint64) string {
	if len(vv) == 0 {
		return "-"
	}
	keys := slices.Sorted(maps.Keys(vv))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, vv[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// clip shortens s to n runes, with an ellipsis.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func esc(s string) string { return template.HTMLEscapeString(s) }
