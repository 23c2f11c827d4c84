package collector

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestForeignTraceContext: B3's two forms and Datadog's headers become
// W3C ids; Datadog's decimal ids are converted, with the trace id's high
// bits from _dd.p.tid; a zero or malformed id is no context.
func TestForeignTraceContext(t *testing.T) {
	for _, c := range []struct {
		name                string
		headers             map[string]string
		trace, span, parent string
		ok                  bool
	}{
		{"single b3 wins", map[string]string{"b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
			"x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124", "x-b3-spanid": "a2fb4a1d1a96d312"},
			"80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1", "05e3ac9a4f6e3b90", true},
		{"b3 multi", map[string]string{"x-b3-traceid": "463AC35C9F6413AD", "x-b3-spanid": "a2fb4a1d1a96d312", "x-b3-parentspanid": "0020000000000001"},
			"0000000000000000463ac35c9f6413ad", "a2fb4a1d1a96d312", "0020000000000001", true},
		{"b3 multi without a span", map[string]string{"x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124"}, "", "", "", false},
		{"datadog 128-bit", map[string]string{"x-datadog-trace-id": "1234567890123456789", "x-datadog-parent-id": "987654321",
			"x-datadog-tags": "_dd.p.dm=-1,_dd.p.tid=640CFD8D00000000"},
			"640cfd8d00000000112210f47de98115", "000000003ade68b1", "", true},
		{"datadog 64-bit", map[string]string{"x-datadog-trace-id": "18446744073709551615", "x-datadog-parent-id": "1"},
			"0000000000000000ffffffffffffffff", "0000000000000001", "", true},
		{"datadog zero trace", map[string]string{"x-datadog-trace-id": "0", "x-datadog-parent-id": "1"}, "", "", "", false},
		{"datadog not a number", map[string]string{"x-datadog-trace-id": "0x12", "x-datadog-parent-id": "1"}, "", "", "", false},
		{"datadog overflow", map[string]string{"x-datadog-trace-id": "18446744073709551616", "x-datadog-parent-id": "1"}, "", "", "", false},
		{"nothing", map[string]string{}, "", "", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			trace, span, parent, ok := foreignTraceContext(func(k string) string { return c.headers[k] })
			assert.Equal(t, c.ok, ok)
			assert.Equal(t, []string{c.trace, c.span, c.parent}, []string{trace, span, parent})
		})
	}
}
