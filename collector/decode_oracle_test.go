package collector

// The decoder as it was before the one-pass rewrite (commit b4facd5): the
// record decoded into map[string]any, masked with redacttest.Masker.Value
// (redact.Value then) and re-encoded. It is the reference decode_diff_test.go
// holds Decoder.Decode to; only the names changed, and its JSON codec is now
// encoding/json itself (it was goccy/go-json, held to encoding/json's
// results). Helpers the rewrite left as they were (mappingFor, serviceName,
// parseFlatCounters, parseB3 and foreignTraceContext, stdReason) are shared.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector/internal/redact"
	"github.com/weft-sh/weft/internal/event"
)

// record is what the lookups see of one Kafka record.
type oracleRecord struct {
	rec     *kgo.Record
	headers map[string]string
	root    map[string]any
}

// oracleDecode is Decoder.Decode as it was.
func oracleDecode(d diffDecoder, r *kgo.Record) (event.Event, error) {
	if len(r.Value) > d.maxBytes {
		return event.Event{}, reject("value is %d bytes, over the %d-byte limit (collector.max_record_bytes)", len(r.Value), d.maxBytes)
	}
	if len(r.Value) == 0 {
		return event.Event{}, reject("empty value (tombstone or empty record)")
	}
	if !utf8.Valid(r.Value) {
		return event.Event{}, reject("value is not valid UTF-8")
	}
	v := oracleRecord{rec: r, headers: make(map[string]string, len(r.Headers))}
	for _, h := range r.Headers {
		v.headers[strings.ToLower(h.Key)] = string(h.Value)
	}

	var (
		format   event.Format
		defaults Mapping
		payload  any
	)
	if v.headers["ce_specversion"] != "" || v.headers["ce_type"] != "" {
		format, defaults = event.FormatCloudEventsBinary, ceDefaults
		data, err := oracleDecodeBinaryData(r.Value, v.headers["content-type"])
		if err != nil {
			return event.Event{}, err
		}
		v.root = map[string]any{"data": data}
		for k, val := range v.headers {
			if attr, ok := strings.CutPrefix(k, "ce_"); ok {
				v.root[attr] = val
			}
		}
		payload = data
	} else {
		obj, err := oracleDecodeObject(r.Value)
		if err != nil {
			return event.Event{}, err
		}
		v.root = obj
		if _, ok := obj["specversion"]; ok {
			format, defaults = event.FormatCloudEventsStructured, ceDefaults
			payload = obj["data"]
		} else {
			format, defaults = event.FormatJSON, plainDefaults
			payload = obj
		}
	}
	m := d.mappingFor(r.Topic, defaults)

	e := event.Event{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key),
		RecordTime: r.Timestamp.UTC(), Format: format,
	}
	var err error
	if e.Type, err = v.first("type", m.Type); err != nil {
		return event.Event{}, err
	}
	if e.Type == "" {
		return event.Event{}, reject("no event type (looked in %s)", strings.Join(m.Type, ", "))
	}
	if e.OrderID, err = v.firstID("order id", m.OrderID); err != nil {
		return event.Event{}, err
	}
	if e.OrderID == "" {
		return event.Event{}, reject("no order id (looked in %s)", strings.Join(m.OrderID, ", "))
	}
	if e.EventID, err = v.firstID("event id", m.EventID); err != nil {
		return event.Event{}, err
	}
	if e.EventID == "" {
		e.EventID = fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
	}
	if e.Service, err = v.first("service", m.Service); err != nil {
		return event.Event{}, err
	}
	e.Service = serviceName(e.Service, r.Topic)
	if e.EventTime, err = v.time(m.Time); err != nil {
		return event.Event{}, err
	}
	if e.CausationID, err = v.firstID("causation id", m.CausationID); err != nil {
		return event.Event{}, err
	}
	if e.CorrelationID, err = v.firstID("correlation id", m.CorrelationID); err != nil {
		return event.Event{}, err
	}
	if e.IdempotencyKey, err = v.firstID("idempotency key", m.IdempotencyKey); err != nil {
		return event.Event{}, err
	}
	if e.VersionVector, err = v.versionVector(m.VersionVector); err != nil {
		return event.Event{}, err
	}
	v.traceContext(&e)

	for _, f := range []*string{&e.EventID, &e.Type, &e.Service, &e.OrderID, &e.CausationID, &e.CorrelationID,
		&e.IdempotencyKey, &e.TraceState} {
		*f = d.red.String(*f)
	}
	e.Key = d.red.Opaque(e.Key)
	red, _ := d.mask.Value(payload)
	if e.Payload, err = oracleEncodeJSON(red); err != nil {
		return event.Event{}, reject("payload cannot be re-encoded: %v", err)
	}
	sum := sha256.Sum256(e.Payload)
	e.PayloadHash = hex.EncodeToString(sum[:])
	names := slices.Sorted(maps.Keys(v.headers))
	stored := d.red.Keys(names)
	e.Headers = make(map[string]string, len(v.headers))
	for i, k := range names {
		val := v.headers[k]
		if d.red.SensitiveKey(k) {
			val = redact.Masked
		} else {
			val = d.red.Opaque(val)
		}
		e.Headers[stored[i]] = val
	}
	return e, nil
}

func oracleDecodeObject(b []byte) (map[string]any, error) {
	v, err := oracleDecodeJSON(b)
	if err != nil {
		return nil, reject("value %v", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, reject("value is a JSON %s, want an object", jsonKind(v))
	}
	return obj, nil
}

func oracleDecodeBinaryData(b []byte, contentType string) (any, error) {
	if contentType != "" && !strings.Contains(strings.ToLower(contentType), "json") {
		return string(b), nil
	}
	v, err := oracleDecodeJSON(b)
	if err != nil {
		return nil, reject("CloudEvents binary data %v", err)
	}
	return v, nil
}

// lookup finds one source; found is false when it is absent or null.
func (v *oracleRecord) lookup(src string) (val any, found bool) {
	switch {
	case src == "key":
		if len(v.rec.Key) == 0 {
			return nil, false
		}
		return string(v.rec.Key), true
	case strings.HasPrefix(src, "header:"):
		h, ok := v.headers[strings.ToLower(strings.TrimPrefix(src, "header:"))]
		return h, ok && h != ""
	case strings.HasPrefix(src, "const:"):
		return strings.TrimPrefix(src, "const:"), true
	}
	var cur any = v.root
	for rest, more := src, true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ".")
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return cur, cur != nil
}

// first returns the first source that is present, as a string. A present
// value of the wrong JSON type is an error, not a fall-through: it means the
// producer sends something other than the contract says. Numbers are
// accepted only for identifiers (numeric order ids are common).
func (v *oracleRecord) first(field string, srcs []string) (string, error) {
	return v.firstOf(field, srcs, false)
}

func (v *oracleRecord) firstID(field string, srcs []string) (string, error) {
	return v.firstOf(field, srcs, true)
}

func (v *oracleRecord) firstOf(field string, srcs []string, numbers bool) (string, error) {
	for _, src := range srcs {
		val, ok := v.lookup(src)
		if !ok {
			continue
		}
		switch t := val.(type) {
		case string:
			if t == "" {
				continue
			}
			return t, nil
		case json.Number:
			if numbers {
				return t.String(), nil
			}
			return "", reject("%s at %q is a JSON number, want a string", field, src)
		default:
			return "", reject("%s at %q is a JSON %s, want a string", field, src, jsonKind(val))
		}
	}
	return "", nil
}

func (v *oracleRecord) time(srcs []string) (time.Time, error) {
	for _, src := range srcs {
		val, ok := v.lookup(src)
		if !ok {
			continue
		}
		t, err := oracleParseTime(val)
		if err != nil {
			return time.Time{}, reject("event time at %q: %v", src, err)
		}
		return t, nil
	}
	if v.rec.Timestamp.IsZero() {
		return time.Time{}, reject("no event time and no record timestamp")
	}
	return v.rec.Timestamp.UTC(), nil
}

func oracleParseTime(val any) (time.Time, error) {
	var t time.Time
	switch x := val.(type) {
	case string:
		var err error
		if t, err = time.Parse(time.RFC3339Nano, x); err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", x)
		}
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || f <= 0 {
			return time.Time{}, fmt.Errorf("%s is not a positive epoch time", x)
		}
		switch {
		case f > 1e17: // nanoseconds
			t = time.Unix(0, int64(f))
		case f > 1e14: // microseconds
			t = time.UnixMicro(int64(f))
		case f > 1e11: // milliseconds
			t = time.UnixMilli(int64(f))
		default:
			t = time.Unix(0, int64(f*1e9))
		}
	default:
		return time.Time{}, fmt.Errorf("is a JSON %s, want a string or number", jsonKind(val))
	}
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, fmt.Errorf("%s is outside the accepted range 1971–2200", t.UTC().Format(time.RFC3339))
	}
	return t.UTC(), nil
}

func (v *oracleRecord) versionVector(srcs []string) (map[string]uint64, error) {
	for _, src := range srcs {
		val, ok := v.lookup(src)
		if !ok {
			continue
		}
		vv, err := oracleParseVersionVector(val)
		if err != nil {
			return nil, reject("version vector at %q: %v", src, err)
		}
		return vv, nil
	}
	return nil, nil
}

// oracleParseVersionVector accepts a JSON object of service → non-negative
// integer, or a string holding one.
func oracleParseVersionVector(val any) (map[string]uint64, error) {
	if s, ok := val.(string); ok {
		// The common case, a plain header, is read straight into the
		// result; anything else takes the generic path below, which
		// accepts every JSON spelling and gives the precise reason.
		if vv, ok := parseFlatCounters(s); ok {
			return vv, nil
		}
		var err error
		if val, err = oracleDecodeJSON([]byte(s)); err != nil {
			return nil, err
		}
	}
	obj, ok := val.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("is a JSON %s, want an object of service → counter", jsonKind(val))
	}
	vv := make(map[string]uint64, len(obj))
	for svc, c := range obj {
		n, ok := c.(json.Number)
		if !ok {
			return nil, fmt.Errorf("entry %q is a JSON %s, want a non-negative integer", svc, jsonKind(c))
		}
		u, err := strconv.ParseUint(n.String(), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("entry %q is %s, want a non-negative integer", svc, n)
		}
		if svc == "" {
			return nil, errors.New("entry with an empty service name")
		}
		vv[svc] = u
	}
	return vv, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// traceContext reads W3C traceparent/tracestate (header, else the CloudEvents
// distributed-tracing extension), or a single-header b3. A malformed trace
// header does not cost the event: the trace fields stay empty.
func (v *oracleRecord) traceContext(e *event.Event) {
	tp := v.headers[event.HeaderTraceParent]
	if tp == "" {
		if s, ok := v.root["traceparent"].(string); ok {
			tp = s
		}
	}
	if traceID, spanID, ok := oracleParseTraceParent(tp); ok {
		e.TraceID, e.SpanID = traceID, spanID
		e.TraceState = v.headers[event.HeaderTraceState]
		if e.TraceState == "" {
			e.TraceState, _ = v.root["tracestate"].(string)
		}
		return
	}
	get := func(k string) string { return v.headers[k] }
	if traceID, spanID, parent, ok := foreignTraceContext(get); ok {
		e.TraceID, e.SpanID, e.ParentSpanID = traceID, spanID, parent
	}
}

// oracleDecodeJSON decodes one JSON document, numbers as json.Number (so
// ids and card numbers keep every digit). The error says what is wrong, to
// follow "value" or "CloudEvents binary data" in a quarantine reason.
func oracleDecodeJSON(b []byte) (any, error) {
	if !json.Valid(b) {
		return nil, stdReason(b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("is not valid JSON: %v", err)
	}
	return v, nil
}

// oracleEncodeJSON encodes a decoded (and masked) value: map keys sorted,
// HTML characters escaped.
func oracleEncodeJSON(v any) ([]byte, error) { return json.Marshal(v) }

// parseTraceParent parses version 00 of W3C traceparent: 00-<32 hex>-<16 hex>-<2 hex>.
func oracleParseTraceParent(s string) (traceID, spanID string, ok bool) {
	parts := strings.Split(strings.TrimSpace(s), "-")
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" {
		return "", "", false
	}
	if !isHex(parts[1], 32) || !isHex(parts[2], 16) || !isHex(parts[3], 2) {
		return "", "", false
	}
	if strings.Trim(parts[1], "0") == "" || strings.Trim(parts[2], "0") == "" {
		return "", "", false
	}
	return strings.ToLower(parts[1]), strings.ToLower(parts[2]), true
}
