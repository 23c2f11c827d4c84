package console

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/weft-sh/weft/consistency"
)

// TestChainSVG: one node per event, each edge from the nearest event one
// level up (also when event ids repeat), the edge's style its link, and
// the version vector in each node's hover title, escaped.
func TestChainSVG(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	evs := []consistency.ChainEvent{
		{EventID: "a", Type: "OrderPlaced", Service: "orders", EventTime: at, VersionVector: map[string]uint64{"orders": 1}},
		{EventID: "b", Type: "InventoryReserved", Service: "inventory", Depth: 1, Via: "explicit", VersionVector: map[string]uint64{"orders": 1, "inventory": 1}},
		{EventID: "dup", Type: "Payment<x>", Service: "payments", Depth: 2, Via: "trace"},
		{EventID: "dup", Type: "Cancelled", Service: "orders", Depth: 1, Via: "inferred"},
	}
	svg := string(chainSVG(evs))
	assert.Equal(t, 4, strings.Count(svg, `<g class="node"`))
	assert.Equal(t, 3, strings.Count(svg, `<path class="edge`))
	assert.Contains(t, svg, `<title>OrderPlaced from orders
version vector {orders:1}`)
	assert.Contains(t, svg, "version vector {inventory:1 orders:1}")
	assert.Contains(t, svg, "Payment&lt;x&gt;", "text is escaped")
	assert.NotContains(t, svg, "Payment<x>")
	// The last event hangs under the root (depth 0, row 0), not under the
	// depth-2 event before it: its edge leaves the root's box.
	assert.Contains(t, svg, `class="edge inferred" d="M20 50 V`)
	assert.Contains(t, svg, `class="edge trace"`)
	assert.Empty(t, chainSVG(nil))
}

// TestSafeNext: after logging in, only a path of this site.
func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "/",
		"/orders/o-1?x=1":      "/orders/o-1?x=1",
		"//evil.example/":      "/",
		"https://evil.example": "/",
		"/\\evil.example":      "/",
		"orders":               "/",
		"/a\r\nSet-Cookie: x":  "/",
	} {
		assert.Equal(t, want, safeNext(in), in)
	}
}

// TestSortStuck: by any column either way, ties by order id; the longest
// stuck first by default.
func TestSortStuck(t *testing.T) {
	rows := []consistency.StuckOrder{
		{OrderID: "b", Reason: "no-answer", InStep: time.Hour},
		{OrderID: "a", Reason: "no-answer", InStep: 2 * time.Hour},
		{OrderID: "c", Reason: "dead-lettered", InStep: 3 * time.Hour},
	}
	ids := func() string {
		var s []string
		for _, r := range rows {
			s = append(s, r.OrderID)
		}
		return strings.Join(s, ",")
	}
	key, desc := sortStuck(rows, "", false)
	assert.Equal(t, "in_step", key)
	assert.True(t, desc)
	assert.Equal(t, "c,a,b", ids())
	sortStuck(rows, "reason", false)
	assert.Equal(t, "c,a,b", ids())
	sortStuck(rows, "reason", true)
	assert.Equal(t, "a,b,c", ids(), "ties by order id whatever the direction")
	sortStuck(rows, "in_step", false)
	assert.Equal(t, "b,a,c", ids())
}
