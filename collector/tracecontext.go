package collector

import (
	"encoding/base64"
	"strings"

	"github.com/weft-sh/weft/internal/event"
)

// traceContext reads W3C traceparent/tracestate (header, else the CloudEvents
// distributed-tracing extension), or a single-header b3. A malformed trace
// header does not cost the event: the trace fields stay empty.
func (v *record) traceContext(e *event.Event) {
	tp, _ := v.header(event.HeaderTraceParent)
	if tp == "" {
		if s, ok := v.rootString("traceparent"); ok {
			tp = s
		}
	}
	if traceID, spanID, ok := parseTraceParent(tp); ok {
		e.TraceID, e.SpanID = traceID, spanID
		e.TraceState, _ = v.header(event.HeaderTraceState)
		if e.TraceState == "" {
			e.TraceState, _ = v.rootString("tracestate")
		}
		return
	}
	b3, _ := v.header(event.HeaderB3)
	if traceID, spanID, parent, ok := parseB3(b3); ok {
		e.TraceID, e.SpanID, e.ParentSpanID = traceID, spanID, parent
	}
}

// parseTraceParent parses version 00 of W3C traceparent: 00-<32 hex>-<16 hex>-<2 hex>
// (a later version may append fields).
func parseTraceParent(s string) (traceID, spanID string, ok bool) {
	version, rest, ok1 := strings.Cut(strings.TrimSpace(s), "-")
	trace, rest, ok2 := strings.Cut(rest, "-")
	span, rest, ok3 := strings.Cut(rest, "-")
	flags, _, _ := strings.Cut(rest, "-")
	if !ok1 || !ok2 || !ok3 || len(version) != 2 || version == "ff" || !isHex(flags, 2) {
		return "", "", false
	}
	if traceID, ok = hexID(trace, 32); !ok {
		return "", "", false
	}
	if spanID, ok = hexID(span, 16); !ok {
		return "", "", false
	}
	return traceID, spanID, true
}

// hexID returns s in lower case when it is n hex digits, not all zero.
func hexID(s string, n int) (string, bool) {
	if len(s) != n {
		return "", false
	}
	upper, zero := false, true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '0':
		case c >= '1' && c <= '9' || c >= 'a' && c <= 'f':
			zero = false
		case c >= 'A' && c <= 'F':
			zero, upper = false, true
		default:
			return "", false
		}
	}
	if zero {
		return "", false
	}
	if upper {
		return strings.ToLower(s), true
	}
	return s, true
}

// parseB3 parses the single-header form {TraceId}-{SpanId}[-{Sampling}[-{ParentSpanId}]].
func parseB3(s string) (traceID, spanID, parent string, ok bool) {
	parts := strings.Split(strings.TrimSpace(s), "-")
	if len(parts) < 2 {
		return "", "", "", false
	}
	t := strings.ToLower(parts[0])
	if isHex(t, 16) {
		t = strings.Repeat("0", 16) + t
	}
	if !isHex(t, 32) || !isHex(parts[1], 16) {
		return "", "", "", false
	}
	if len(parts) == 4 && isHex(parts[3], 16) {
		parent = strings.ToLower(parts[3])
	}
	return t, strings.ToLower(parts[1]), parent, true
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
