package collector

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector/internal/jsondoc"
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
	states   sync.Pool // of *decodeState: one per Decode in flight
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

// Default source lists of the event contract (docs/event-contract.md).
// CloudEvents attributes sit at the top of the envelope; binary-mode
// attributes are lifted from ce_* headers into the same places.
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

// Decode returns the event of r, or a *DecodeError saying why there is none.
//
// It reads the value in one pass (internal/jsondoc, which accepts exactly
// what encoding/json accepts), looks the mapped fields up in that index
// and writes the masked payload from it: no map[string]any is built. The
// payload is what encoding/json would write for the decoded and masked
// value: keys sorted, a repeated key's last value kept (as in every lookup),
// numbers as they were written.
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
	st := d.state()
	defer d.release(st)
	v := st.record(r)

	var (
		format   event.Format
		defaults Mapping
		payload  = jsondoc.None // null unless set
	)
	if v.headerSet("ce_specversion") || v.headerSet("ce_type") {
		format, defaults = event.FormatCloudEventsBinary, ceDefaults
		v.binary = true
		if ct, _ := v.header("content-type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
			v.dataText = true
		} else if err := v.doc.Parse(r.Value); err != nil {
			return event.Event{}, reject("CloudEvents binary data %v", stdReason(r.Value))
		} else {
			v.data, payload = 0, 0
		}
	} else {
		if err := v.doc.Parse(r.Value); err != nil {
			return event.Event{}, reject("value %v", stdReason(r.Value))
		}
		if k := v.doc.Kind(0); k != jsondoc.Object {
			return event.Event{}, reject("value is a JSON %s, want an object", k)
		}
		v.root = 0
		if v.doc.Member(0, "specversion") != jsondoc.None {
			format, defaults = event.FormatCloudEventsStructured, ceDefaults
			payload = v.doc.Member(0, "data")
		} else {
			format, defaults = event.FormatJSON, plainDefaults
			payload = 0
		}
	}
	m := d.mappingFor(r.Topic, defaults)

	e := event.Event{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: v.key,
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
	d.maskFields(&e)

	w := payloadWriter{red: d.red, doc: &st.doc, out: st.out[:0], members: st.members[:0]}
	if v.dataText {
		w.text(r.Value)
	} else {
		w.value(payload)
	}
	st.out, st.members = w.out, w.members
	e.Payload = make([]byte, len(w.out))
	copy(e.Payload, w.out) // make and copy: the compiler allocates without zeroing
	// The hash of what is stored, never of the original: a hash of the
	// original would let anyone holding the masked copy test guesses of
	// what was masked (a card's middle digits are about 10^6 guesses).
	sum := sha256.Sum256(e.Payload)
	var hexSum [2 * sha256.Size]byte
	hex.Encode(hexSum[:], sum[:])
	e.PayloadHash = string(hexSum[:]) // one allocation, where EncodeToString makes two
	e.Headers = d.maskHeaders(v.hdrKeys, v.hdrVals)
	return e, nil
}

// maskFields masks the event's string fields that come from the record as
// written — its key and the identifiers read from it — as free text is
// masked: an e-mail address or card number used as a record key or an id
// is not stored in clear. (Orders keyed by personal data then share one
// masked id; map the order id from another field, docs/event-contract.md.)
func (d *Decoder) maskFields(e *event.Event) {
	for _, f := range []*string{&e.EventID, &e.Type, &e.Service, &e.OrderID, &e.CausationID, &e.CorrelationID,
		&e.IdempotencyKey, &e.TraceState} {
		if *f != "" && !d.red.UnchangedString(*f) {
			*f = d.red.String(*f)
		}
	}
	if e.Key != "" {
		e.Key = d.red.Opaque(e.Key)
	}
}

// maskHeaders returns the headers as stored: a name that holds personal
// data is masked (kept distinct, as object keys are), the value of a
// sensitive name is Masked, and every other value masked as opaque text.
// keys and vals are in record order; the last value of a name wins.
func (d *Decoder) maskHeaders(keys, vals []string) map[string]string {
	out := make(map[string]string, len(keys))
	if len(keys) == 0 {
		return out
	}
	names := keys
	for _, k := range keys {
		if !d.red.UnchangedString(k) {
			names = d.headerNames(keys)
			break
		}
	}
	for i, k := range keys {
		val := vals[i]
		if d.red.SensitiveKey(k) {
			val = redact.Masked
		} else {
			val = d.red.Opaque(val)
		}
		out[names[i]] = val
	}
	return out
}

// headerNames masks header names as Redactor.Keys masks object keys: the
// same name keeps one stored name, distinct names stay distinct.
func (d *Decoder) headerNames(keys []string) []string {
	distinct := slices.Compact(slices.Sorted(slices.Values(keys)))
	masked := d.red.Keys(distinct)
	as := make(map[string]string, len(distinct))
	for i, k := range distinct {
		as[k] = masked[i]
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = as[k]
	}
	return out
}

// Quarantine builds the quarantined copy of r, masked like any stored data.
func (d *Decoder) Quarantine(r *kgo.Record, reason string) event.Quarantined {
	q := event.Quarantined{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: []byte(d.red.Opaque(string(r.Key))),
		Value: []byte(d.red.Opaque(string(r.Value))), Size: len(r.Value), RecordTime: r.Timestamp.UTC(),
		Reason: d.red.Opaque(reason),
	}
	if !utf8.Valid(q.Value) {
		// Keep the bytes recoverable: ClickHouse strings are bytes, but a
		// reader's terminal is not. Masked first, like any other value.
		q.Value = []byte("base64:" + base64Std(q.Value))
	}
	keys, vals := make([]string, len(r.Headers)), make([]string, len(r.Headers))
	for i, h := range r.Headers {
		keys[i], vals[i] = h.Key, string(h.Value)
	}
	q.Headers = d.maskHeaders(keys, vals)
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
