package tracing

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weft-sh/weft/internal/chstore"
)

// SpanRows converts td to otel_traces rows as the OpenTelemetry Collector
// ClickHouse exporter writes them: ids in hex, attribute values as
// strings, kind and status as the exporter names them.
func SpanRows(td ptrace.Traces) []chstore.SpanRow {
	var out []chstore.SpanRow
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := attrMap(rs.Resource().Attributes())
		svc := res[AttrServiceName]
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				r := chstore.SpanRow{Timestamp: s.StartTimestamp().AsTime(), TraceID: s.TraceID().String(), SpanID: s.SpanID().String(),
					ParentSpanID: s.ParentSpanID().String(), TraceState: s.TraceState().AsRaw(), SpanName: s.Name(),
					SpanKind: spanKind(s.Kind()), ServiceName: svc, ResourceAttributes: res, ScopeName: ss.Scope().Name(),
					ScopeVersion: ss.Scope().Version(), SpanAttributes: attrMap(s.Attributes()),
					Duration: s.EndTimestamp().AsTime().Sub(s.StartTimestamp().AsTime()), StatusCode: statusCode(s.Status().Code()),
					StatusMessage: s.Status().Message()}
				for e := 0; e < s.Events().Len(); e++ {
					ev := s.Events().At(e)
					r.Events = append(r.Events, chstore.SpanEventRow{Timestamp: ev.Timestamp().AsTime(), Name: ev.Name(), Attributes: attrMap(ev.Attributes())})
				}
				for l := 0; l < s.Links().Len(); l++ {
					ln := s.Links().At(l)
					r.Links = append(r.Links, chstore.SpanLinkRow{TraceID: ln.TraceID().String(), SpanID: ln.SpanID().String(),
						TraceState: ln.TraceState().AsRaw(), Attributes: attrMap(ln.Attributes())})
				}
				out = append(out, r)
			}
		}
	}
	return out
}

func attrMap(a pcommon.Map) map[string]string {
	m := make(map[string]string, a.Len())
	a.Range(func(k string, v pcommon.Value) bool {
		m[k] = v.AsString()
		return true
	})
	return m
}

// spanKind and statusCode name kinds and codes as the proto does, as the
// ClickHouse exporter stores them.
func spanKind(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindInternal:
		return "SPAN_KIND_INTERNAL"
	case ptrace.SpanKindServer:
		return "SPAN_KIND_SERVER"
	case ptrace.SpanKindClient:
		return "SPAN_KIND_CLIENT"
	case ptrace.SpanKindProducer:
		return "SPAN_KIND_PRODUCER"
	case ptrace.SpanKindConsumer:
		return "SPAN_KIND_CONSUMER"
	}
	return "SPAN_KIND_UNSPECIFIED"
}

func statusCode(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeOk:
		return "STATUS_CODE_OK"
	case ptrace.StatusCodeError:
		return "STATUS_CODE_ERROR"
	}
	return "STATUS_CODE_UNSET"
}
