package collector

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/weft-sh/weft/internal/event"
)

// traceContext reads W3C traceparent/tracestate (header, else the CloudEvents
// distributed-tracing extension), else B3 (single or multi-header) or
// Datadog's headers (foreignTraceContext). A malformed trace header does
// not cost the event: the trace fields stay empty.
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
	get := func(k string) string { h, _ := v.header(k); return h }
	if traceID, spanID, parent, ok := foreignTraceContext(get); ok {
		e.TraceID, e.SpanID, e.ParentSpanID = traceID, spanID, parent
	}
}

// Trace headers of producers that do not speak W3C Trace Context.
const (
	headerB3TraceID      = "x-b3-traceid"
	headerB3SpanID       = "x-b3-spanid"
	headerB3ParentSpanID = "x-b3-parentspanid"
	headerDDTraceID      = "x-datadog-trace-id"
	headerDDParentID     = "x-datadog-parent-id"
	headerDDTags         = "x-datadog-tags"
)

// foreignTraceContext reads, from the headers get returns (by lower-case
// name), the trace context of a producer that did not send traceparent: a
// single-header b3, else B3's multi-header form, else Datadog's
// x-datadog-trace-id/x-datadog-parent-id (decimal 64-bit ids) with the
// trace id's high 64 bits from the _dd.p.tid tag — the 128-bit id Datadog
// itself shows when it receives OTLP (docs/tracing.md, "Links to the
// services' own traces").
func foreignTraceContext(get func(string) string) (traceID, spanID, parent string, ok bool) {
	if traceID, spanID, parent, ok = parseB3(get(event.HeaderB3)); ok {
		return traceID, spanID, parent, true
	}
	if t, s := get(headerB3TraceID), get(headerB3SpanID); t != "" && s != "" {
		b3 := t + "-" + s
		if p := get(headerB3ParentSpanID); p != "" {
			b3 += "-1-" + p
		}
		if traceID, spanID, parent, ok = parseB3(b3); ok {
			return traceID, spanID, parent, true
		}
	}
	return parseDatadog(get(headerDDTraceID), get(headerDDParentID), get(headerDDTags))
}

// parseDatadog converts Datadog's decimal ids to W3C hex ids; a trace id
// of zero or a malformed one is no context.
func parseDatadog(trace, parentID, tags string) (traceID, spanID, parent string, ok bool) {
	lo, err1 := strconv.ParseUint(strings.TrimSpace(trace), 10, 64)
	sp, err2 := strconv.ParseUint(strings.TrimSpace(parentID), 10, 64)
	if err1 != nil || err2 != nil || lo == 0 || sp == 0 {
		return "", "", "", false
	}
	hi := strings.Repeat("0", 16)
	for _, tag := range strings.Split(tags, ",") {
		if k, v, _ := strings.Cut(strings.TrimSpace(tag), "="); k == "_dd.p.tid" && isHex(v, 16) {
			hi = strings.ToLower(v)
		}
	}
	return hi + fmt.Sprintf("%016x", lo), fmt.Sprintf("%016x", sp), "", true
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
