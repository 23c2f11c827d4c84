package demo

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// This file puts personal data where masking must find it
// (PersonalData): record keys, header values and names, payload fields a
// key-based rule covers, free text, and records that cannot be decoded.

// cvvs are the card verification values PersonalData adds. Four digits
// with a leading zero (an American Express CID), so that none can be read
// out of anything else a record or weft stores: timestamps have two- or
// three-digit fields, amounts and counters no leading zero, pickup codes
// six digits, card endings are those of the test cards.
var cvvs = []string{"0417", "0593", "0738", "0862", "0951"}

// CVVs returns the card verification values PersonalData puts in records,
// so that a test can look for them wherever weft stores data.
func CVVs() []string { return append([]string(nil), cvvs...) }

// orderPII says which personal data an order's records carry beyond its
// payload fields.
type orderPII struct {
	keyedByEmail bool
	payloads     bool
	headers      bool
	cvv          string
}

// personalRand is the random stream of the personal data of order idx:
// apart from the order's own (orderRand), so that turning PersonalData on
// changes nothing else of a run.
func personalRand(seed int64, idx int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed)^0x5e1f, 0xc0ffee^uint64(idx)))
}

// newOrderPII draws an order's personal data.
func newOrderPII(pd PersonalData, seed int64, idx int) orderPII {
	r := personalRand(seed, idx)
	keyed := r.Float64() < pd.KeyedByEmail
	return orderPII{keyedByEmail: keyed, payloads: pd.Payloads, headers: pd.Headers, cvv: cvvs[r.IntN(len(cvvs))]}
}

// spacedCard writes a card number in groups of four, as people type it.
func spacedCard(card string) string {
	var b strings.Builder
	for i := 0; i < len(card); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(card[i:min(i+4, len(card))])
	}
	return b.String()
}

// addPersonalData adds PersonalData.Payloads fields to an event's data: a
// CVV beside each card number, a map keyed by the customer's e-mail, and
// card numbers in free text (spaced, and followed by an attempt number).
func addPersonalData(o *order, e *event, d map[string]any) {
	if !o.pii.payloads {
		return
	}
	f := &o.facts
	switch e.typ {
	case OrderPlaced:
		if pay, ok := d["payment"].(map[string]any); ok {
			pay["cvv"] = o.pii.cvv
		}
		d["note"] = "customer asked to keep card " + spacedCard(f.card) + " on file"
	case PaymentRequested:
		d["cvv"] = o.pii.cvv
		// A reference a developer built from the card and the attempt.
		d["reference"] = fmt.Sprintf("%s-%02d", f.card, e.attempt)
	case CustomerNotified:
		d["recipients"] = map[string]any{f.email: map[string]any{"channel": f.channel, "phone": f.phone}}
	}
}

// personalHeaders are the PersonalData.Headers of an event: the
// customer's e-mail in a header value and in header names, a card, CVV
// and phone in a debug header, a JSON header and a cvv header.
func personalHeaders(o *order, e *event) []kgo.RecordHeader {
	f := &o.facts
	var hs []kgo.RecordHeader
	h := func(k, v string) { hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	switch e.typ {
	case OrderPlaced:
		h("x-customer-email", f.email)
		h("x-subscriber."+f.email, "order-updates")
	case PaymentRequested:
		h("x-payment-debug", fmt.Sprintf("card=%s; cvv=%s; phone=%s", spacedCard(f.card), o.pii.cvv, f.phone))
		h("x-payment-context", fmt.Sprintf(`{"email":%q,"card_number":%q,"cvv":%q}`, f.email, f.card, o.pii.cvv))
		h("cvv", o.pii.cvv)
	case CustomerNotified:
		h("x-customer-phone", f.phone)
		h("x-notify."+f.email, f.channel)
	}
	return hs
}

// undecodable is the i-th record of PersonalData.Undecodable, made of
// order o's personal data, at time at: truncated JSON, JSON with single
// quotes, form data, or invalid UTF-8, each with a card number, a CVV and
// the customer's e-mail (as a key where the shape has keys), keyed by the
// e-mail.
func undecodable(o *order, i int, at time.Time, topics TopicNames) *emission {
	f := &o.facts
	truncated := fmt.Sprintf(`{"order_id":%q,"event_type":"PaymentRequested","payment":{"card_number":%q,"cvv":%q},"customer":{%q:{"phone":%q}},"amount":12.`,
		o.id, f.card, o.pii.cvv, f.email, f.phone)
	var value []byte
	topic := TopicPayments
	switch i % 4 {
	case 0:
		value = []byte(truncated)
	case 1:
		value = fmt.Appendf(nil, `{'order_id': '%s', 'email': '%s', 'cvv': %s, 'card': %s}`, o.id, f.email, o.pii.cvv, spacedCard(f.card))
		topic = TopicOrders
	case 2:
		value = fmt.Appendf(nil, "order_id=%s&email=%s&card_number=%s&cvv=%s&phone=%s", o.id, f.email, f.card, o.pii.cvv, f.phone)
	default:
		value = append([]byte{0xff, 0xfe}, truncated...)
		topic = TopicOrders
	}
	rec := &kgo.Record{
		Topic: topics.Name(topic), Key: []byte(f.email), Value: value, Timestamp: at,
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")},
			{Key: "x-customer-email", Value: []byte(f.email)}},
	}
	return &emission{rec: rec, at: at, ord: o, seq: len(o.emissions) + i, undecodable: true}
}
