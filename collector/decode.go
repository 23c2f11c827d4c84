package collector

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector/internal/redact"
	"github.com/weft-sh/weft/internal/event"
)

// DecodeError says why a record could not become an event. The record is
// quarantined with Reason.
type DecodeError struct{ Reason string }

func (e *DecodeError) Error() string { return e.Reason }

func reject(format string, args ...any) error {
	return &DecodeError{Reason: fmt.Sprintf(format, args...)}
}

// Decoder turns Kafka records into events following the event contract and
// the configured per-topic mapping rules. It is safe for concurrent use.
type Decoder struct {
	rules    []rule
	red      *redact.Redactor
	maxBytes int
}

type rule struct {
	topic *regexp.Regexp
	m     Mapping
}

// NewDecoder compiles the mapping and redaction rules of c.
func NewDecoder(c Config) (*Decoder, error) {
	d := &Decoder{red: redact.New(c.Redaction.rules()), maxBytes: c.MaxRecordBytes}
	if d.maxBytes <= 0 {
		d.maxBytes = Default().MaxRecordBytes
	}
	for i, m := range c.Mapping {
		re, err := regexp.Compile(`^(?:` + m.Topic + `)$`)
		if err != nil {
			return nil, fmt.Errorf("collector.mapping[%d].topic: %w", i, err)
		}
		d.rules = append(d.rules, rule{topic: re, m: m})
	}
	return d, nil
}

// Default source lists of the event contract (DESIGN.md). CloudEvents
// attributes sit at the top of the envelope; binary-mode attributes are
// lifted from ce_* headers into the same places.
var (
	ceDefaults = Mapping{
		OrderID:        []string{"subject", "data.order_id", "data.orderId", "key"},
		EventID:        []string{"id"},
		Type:           []string{"type"},
		Service:        []string{"source"},
		Time:           []string{"time"},
		CausationID:    []string{"header:" + event.HeaderCausationID, "causationid"},
		CorrelationID:  []string{"header:" + event.HeaderCorrelationID, "correlationid"},
		VersionVector:  []string{"header:" + event.HeaderVersionVector, "versionvector"},
		IdempotencyKey: []string{"header:" + event.HeaderIdempotencyKey, "data.idempotency_key"},
	}
	plainDefaults = Mapping{
		OrderID:        []string{"order_id", "orderId", "data.order_id", "key"},
		EventID:        []string{"event_id", "id"},
		Type:           []string{"event_type", "type"},
		Time:           []string{"occurred_at", "time", "timestamp"},
		CausationID:    []string{"header:" + event.HeaderCausationID, "causation_id"},
		CorrelationID:  []string{"header:" + event.HeaderCorrelationID, "correlation_id"},
		VersionVector:  []string{"header:" + event.HeaderVersionVector, "version_vector"},
		IdempotencyKey: []string{"header:" + event.HeaderIdempotencyKey, "idempotency_key", "data.idempotency_key"},
	}
)

// record is what the lookups see of one Kafka record.
type record struct {
	rec     *kgo.Record
	headers map[string]string
	root    map[string]any
}

// Decode returns the event of r, or a *DecodeError saying why there is none.
func (d *Decoder) Decode(r *kgo.Record) (event.Event, error) {
	if len(r.Value) > d.maxBytes {
		return event.Event{}, reject("value is %d bytes, over the %d-byte limit (collector.max_record_bytes)", len(r.Value), d.maxBytes)
	}
	if len(r.Value) == 0 {
		return event.Event{}, reject("empty value (tombstone or empty record)")
	}
	if !utf8.Valid(r.Value) {
		return event.Event{}, reject("value is not valid UTF-8")
	}
	v := record{rec: r, headers: make(map[string]string, len(r.Headers))}
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
		data, err := decodeBinaryData(r.Value, v.headers["content-type"])
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
		obj, err := decodeObject(r.Value)
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

	sum := sha256.Sum256(r.Value)
	e.PayloadHash = hex.EncodeToString(sum[:])
	red, _ := d.red.Value(payload)
	if e.Payload, err = encodeJSON(red); err != nil {
		return event.Event{}, reject("payload cannot be re-encoded: %v", err)
	}
	e.Headers = make(map[string]string, len(v.headers))
	for k, val := range v.headers {
		if d.red.SensitiveKey(k) {
			val = redact.Masked
		}
		e.Headers[k] = d.red.String(val)
	}
	return e, nil
}

// Quarantine builds the quarantined copy of r, masked like any stored data.
func (d *Decoder) Quarantine(r *kgo.Record, reason string) event.Quarantined {
	q := event.Quarantined{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key,
		Value: []byte(d.red.String(string(r.Value))), Size: len(r.Value), RecordTime: r.Timestamp.UTC(), Reason: reason,
		Headers: make(map[string]string, len(r.Headers)),
	}
	if !utf8.Valid(r.Value) {
		// Keep the bytes recoverable: ClickHouse strings are bytes, but a
		// reader's terminal is not.
		q.Value = []byte("base64:" + base64Std(r.Value))
	}
	for _, h := range r.Headers {
		q.Headers[h.Key] = d.red.String(string(h.Value))
	}
	return q
}

func (d *Decoder) mappingFor(topic string, defaults Mapping) Mapping {
	for _, rl := range d.rules {
		if !rl.topic.MatchString(topic) {
			continue
		}
		m := rl.m
		pick := func(own, def []string) []string {
			if len(own) > 0 {
				return own
			}
			return def
		}
		return Mapping{
			OrderID: pick(m.OrderID, defaults.OrderID), EventID: pick(m.EventID, defaults.EventID),
			Type: pick(m.Type, defaults.Type), Service: pick(m.Service, defaults.Service),
			Time: pick(m.Time, defaults.Time), CausationID: pick(m.CausationID, defaults.CausationID),
			CorrelationID: pick(m.CorrelationID, defaults.CorrelationID), VersionVector: pick(m.VersionVector, defaults.VersionVector),
			IdempotencyKey: pick(m.IdempotencyKey, defaults.IdempotencyKey),
		}
	}
	return defaults
}

func decodeObject(b []byte) (map[string]any, error) {
	v, err := decodeJSON(b)
	if err != nil {
		return nil, reject("value %v", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, reject("value is a JSON %s, want an object", jsonKind(v))
	}
	return obj, nil
}

func decodeBinaryData(b []byte, contentType string) (any, error) {
	if contentType != "" && !strings.Contains(strings.ToLower(contentType), "json") {
		return string(b), nil
	}
	v, err := decodeJSON(b)
	if err != nil {
		return nil, reject("CloudEvents binary data %v", err)
	}
	return v, nil
}

// lookup finds one source; found is false when it is absent or null.
func (v *record) lookup(src string) (val any, found bool) {
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
func (v *record) first(field string, srcs []string) (string, error) {
	return v.firstOf(field, srcs, false)
}

func (v *record) firstID(field string, srcs []string) (string, error) {
	return v.firstOf(field, srcs, true)
}

func (v *record) firstOf(field string, srcs []string, numbers bool) (string, error) {
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

func (v *record) time(srcs []string) (time.Time, error) {
	for _, src := range srcs {
		val, ok := v.lookup(src)
		if !ok {
			continue
		}
		t, err := parseTime(val)
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

var (
	minTime = time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

func parseTime(val any) (time.Time, error) {
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

func (v *record) versionVector(srcs []string) (map[string]uint64, error) {
	for _, src := range srcs {
		val, ok := v.lookup(src)
		if !ok {
			continue
		}
		vv, err := parseVersionVector(val)
		if err != nil {
			return nil, reject("version vector at %q: %v", src, err)
		}
		return vv, nil
	}
	return nil, nil
}

// parseVersionVector accepts a JSON object of service → non-negative integer,
// or a string holding one.
func parseVersionVector(val any) (map[string]uint64, error) {
	if s, ok := val.(string); ok {
		// The common case, a plain header, is read straight into the
		// result; anything else takes the generic path below, which
		// accepts every JSON spelling and gives the precise reason.
		if vv, ok := parseFlatCounters(s); ok {
			return vv, nil
		}
		var err error
		if val, err = decodeJSON([]byte(s)); err != nil {
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

// parseFlatCounters reads the usual spelling of a version vector,
// {"service":counter,...} with unescaped names and plain decimal counters,
// without a JSON decoder. ok is false for anything else (escapes, other
// value types, an empty name, a counter over 64 bits, bad syntax): the
// caller then decodes it generically, which decides.
func parseFlatCounters(s string) (vv map[string]uint64, ok bool) {
	i := 0
	ws := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	ws()
	if i == len(s) || s[i] != '{' {
		return nil, false
	}
	i++
	vv = make(map[string]uint64, 4)
	ws()
	if i < len(s) && s[i] == '}' {
		i++
		ws()
		return vv, i == len(s)
	}
	for {
		ws()
		if i == len(s) || s[i] != '"' {
			return nil, false
		}
		end := strings.IndexByte(s[i+1:], '"')
		if end <= 0 {
			return nil, false
		}
		name := s[i+1 : i+1+end]
		for j := 0; j < len(name); j++ {
			if name[j] == '\\' || name[j] < 0x20 {
				return nil, false
			}
		}
		if !utf8.ValidString(name) {
			return nil, false
		}
		i += end + 2
		ws()
		if i == len(s) || s[i] != ':' {
			return nil, false
		}
		i++
		ws()
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		digits := s[start:i]
		if digits == "" || len(digits) > 1 && digits[0] == '0' {
			return nil, false
		}
		n, err := strconv.ParseUint(digits, 10, 64)
		if err != nil {
			return nil, false
		}
		vv[name] = n // a repeated name: the last wins, as in encoding/json
		ws()
		if i == len(s) {
			return nil, false
		}
		switch s[i] {
		case ',':
			i++
		case '}':
			i++
			ws()
			return vv, i == len(s)
		default:
			return nil, false
		}
	}
}

// serviceName normalizes a CloudEvents source (often a URI) to a service
// name, and falls back to the topic's prefix.
func serviceName(source, topic string) string {
	if source != "" {
		s := strings.TrimRight(source, "/")
		if i := strings.LastIndexAny(s, "/:"); i >= 0 && i < len(s)-1 {
			s = s[i+1:]
		}
		return s
	}
	if i := strings.IndexAny(topic, ".-_"); i > 0 {
		return topic[:i]
	}
	return topic
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
