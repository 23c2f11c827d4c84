package demo

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// This file makes an order's business data: store, customer, basket, card,
// and the data object of each event type.

// Product is one line of the demo shop's catalog.
type Product struct {
	SKU, Name string
	Cents     int64
}

// Catalog is what the demo shop sells; the scale generator's baskets use it too.
var Catalog = []Product{
	{"SKU-10012", "USB-C charging cable 2m", 1299},
	{"SKU-10458", "Wireless earbuds", 7999},
	{"SKU-11020", "Stainless water bottle 750ml", 2499},
	{"SKU-12007", "LED desk lamp", 3495},
	{"SKU-13311", "Running socks 3-pack", 1599},
	{"SKU-14090", "Ceramic pour-over set", 4250},
	{"SKU-15502", "Board game: Harbor Lights", 3999},
	{"SKU-16230", "Phone case, clear", 1999},
	{"SKU-17118", "AA batteries 12-pack", 1149},
	{"SKU-18841", "Yoga mat 6mm", 2899},
	{"SKU-19003", "Cast iron skillet 10in", 3699},
	{"SKU-20575", "Kids' rain boots", 2750},
	{"SKU-21460", "Bluetooth speaker", 5999},
	{"SKU-22309", "Notebook, dotted A5", 899},
}

var stores = []string{"store-0101", "store-0117", "store-0142", "store-0203", "store-0230",
	"store-0311", "store-0356", "store-0402", "store-0418", "store-0525"}

var firstNames = []string{"ada", "bruno", "chen", "dana", "emeka", "farah", "goran", "hana",
	"ines", "jonas", "keiko", "luis", "maya", "nils", "olga", "priya"}
var lastNames = []string{"okafor", "schmidt", "li", "moreau", "silva", "kowalski", "tanaka",
	"haddad", "novak", "garcia", "lindqvist", "patel"}

// testCards are well-known test card numbers; every one passes the Luhn check.
var testCards = []struct{ number, brand string }{
	{"4111111111111111", "visa"},
	{"4012888888881881", "visa"},
	{"5555555555554444", "mastercard"},
	{"5105105105105100", "mastercard"},
	{"378282246310005", "amex"},
	{"6011111111111117", "discover"},
}

var declineReasons = []string{"insufficient_funds", "do_not_honor", "expired_card", "suspected_fraud"}
var retryReasons = []string{"issuer_unavailable", "gateway_timeout", "rate_limited", "network_error"}

type item struct {
	Product
	qty int
}

// facts is one order's business data, shared by all its events.
type facts struct {
	storeID      string
	customerID   string
	email, phone string
	card, brand  string
	items        []item
	currency     string
	total        int64 // cents, tax included
	tax          int64
	paymentID    string
	reservation  string
	pickupCode   string
	bin          string
	channel      string
	pickerID     string
	declineCode  string
	retryReasons []string
}

func newFacts(r *rand.Rand) facts {
	first, last := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	card := testCards[r.IntN(len(testCards))]
	f := facts{
		storeID:     stores[r.IntN(len(stores))],
		customerID:  fmt.Sprintf("cus_%s", randAlnum(r, 10)),
		email:       fmt.Sprintf("%s.%s%d@example.com", first, last, r.IntN(100)),
		phone:       fmt.Sprintf("+1%03d5550%03d", 200+r.IntN(800), 100+r.IntN(100)),
		card:        card.number,
		brand:       card.brand,
		currency:    []string{"USD", "USD", "USD", "CAD"}[r.IntN(4)],
		paymentID:   "pay_" + randAlnum(r, 14),
		reservation: "res_" + randAlnum(r, 12),
		pickupCode:  fmt.Sprintf("%06d", r.IntN(1000000)),
		bin:         fmt.Sprintf("%c-%02d", 'A'+rune(r.IntN(6)), 1+r.IntN(40)),
		channel:     []string{"sms", "email", "push"}[r.IntN(3)],
		pickerID:    fmt.Sprintf("emp-%04d", 1000+r.IntN(9000)),
		declineCode: declineReasons[r.IntN(len(declineReasons))],
	}
	for _, i := range r.Perm(len(Catalog))[:1+r.IntN(4)] {
		f.items = append(f.items, item{Catalog[i], 1 + r.IntN(3)})
	}
	var sub int64
	for _, it := range f.items {
		sub += it.Cents * int64(it.qty)
	}
	f.tax = sub * 8 / 100
	f.total = sub + f.tax
	for range maxRetries {
		f.retryReasons = append(f.retryReasons, retryReasons[r.IntN(len(retryReasons))])
	}
	return f
}

func randAlnum(r *rand.Rand, n int) string {
	const abc = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b strings.Builder
	for range n {
		b.WriteByte(abc[r.IntN(len(abc))])
	}
	return b.String()
}

func money(cents int64) float64 { return float64(cents) / 100 }

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// eventData builds the data object of an event.
func eventData(o *order, e *event) map[string]any {
	f := &o.facts
	d := map[string]any{"order_id": o.id}
	lines := func(withPrice bool) []any {
		out := make([]any, len(f.items))
		for i, it := range f.items {
			l := map[string]any{"sku": it.SKU, "qty": it.qty}
			if withPrice {
				l["name"], l["unit_price"] = it.Name, money(it.Cents)
			}
			out[i] = l
		}
		return out
	}
	windowStart := o.events[0].at.Add(30 * time.Minute).Truncate(time.Hour)
	window := map[string]any{"start": ts(windowStart), "end": ts(windowStart.Add(72 * time.Hour))}
	switch e.typ {
	case OrderPlaced:
		d["store_id"], d["fulfillment_type"] = f.storeID, "bopis"
		d["customer"] = map[string]any{"id": f.customerID, "email": f.email, "phone": f.phone}
		d["items"] = lines(true)
		d["tax"], d["amount"], d["currency"] = money(f.tax), money(f.total), f.currency
		d["payment"] = map[string]any{"method": "card", "brand": f.brand, "card_number": f.card, "exp": "12/29"}
		d["pickup_window"] = window
	case InventoryReserved:
		d["store_id"], d["reservation_id"], d["items"] = f.storeID, f.reservation, lines(false)
		d["expires_at"] = ts(e.at.Add(4 * time.Hour))
	case PaymentRequested:
		d["payment_id"], d["attempt"] = f.paymentID, e.attempt
		d["amount"], d["currency"], d["method"] = money(f.total), f.currency, "card"
		d["card_number"], d["brand"], d["customer_email"] = f.card, f.brand, f.email
	case PaymentRetryScheduled:
		d["payment_id"], d["attempt"], d["next_attempt"] = f.paymentID, e.attempt, e.attempt+1
		d["reason"] = f.retryReasons[(e.attempt-1)%len(f.retryReasons)]
		d["backoff_ms"], d["next_attempt_at"] = e.backoff.Milliseconds(), ts(e.at.Add(e.backoff))
	case PaymentAuthorized:
		d["payment_id"], d["attempt"] = f.paymentID, e.attempt
		d["amount"], d["currency"] = money(f.total), f.currency
		d["auth_code"], d["card_last4"] = strings.ToUpper(e.id[:6]), f.card[len(f.card)-4:]
	case PaymentDeclined:
		d["payment_id"], d["attempt"], d["reason"] = f.paymentID, e.attempt, f.declineCode
		d["decline_code"] = map[string]string{"insufficient_funds": "51", "do_not_honor": "05",
			"expired_card": "54", "suspected_fraud": "59"}[f.declineCode]
	case PaymentFailed:
		d["payment_id"], d["attempts"], d["reason"] = f.paymentID, e.attempt, "retries_exhausted"
		d["last_error"] = f.retryReasons[len(f.retryReasons)-1]
	case FulfillmentStarted:
		d["store_id"], d["items"] = f.storeID, lines(false)
		d["picker_id"] = f.pickerID
	case ReadyForPickup:
		d["store_id"], d["pickup_code"], d["bin"] = f.storeID, f.pickupCode, f.bin
		d["pickup_window"] = window
	case CustomerNotified:
		d["channel"], d["template"] = f.channel, "order_ready_for_pickup"
		if f.channel == "sms" {
			d["phone"] = f.phone
		} else {
			d["email"] = f.email
		}
	case PickedUp:
		d["store_id"], d["verified_by"] = f.storeID, []string{"pickup_code", "id_check"}[int(e.id[0])%2]
	case PaymentCaptured:
		d["payment_id"], d["capture_id"] = f.paymentID, "cap_"+strings.ReplaceAll(e.id, "-", "")[:12]
		d["amount"], d["currency"] = money(f.total), f.currency
	case OrderCompleted:
		d["store_id"], d["amount"], d["currency"] = f.storeID, money(f.total), f.currency
	case PickupExpired:
		d["store_id"], d["reason"], d["hold_expired_at"] = f.storeID, "not_collected", ts(e.at)
	case InventoryReleased:
		d["store_id"], d["reservation_id"], d["items"] = f.storeID, f.reservation, lines(false)
		d["reason"] = cancelReason(o)
	case PaymentVoided:
		d["payment_id"], d["amount"], d["currency"] = f.paymentID, money(f.total), f.currency
		d["reason"] = "pickup_expired"
	case OrderCancelled:
		d["store_id"], d["reason"] = f.storeID, cancelReason(o)
	}
	return d
}

func cancelReason(o *order) string {
	switch o.spec.out {
	case outDeclined:
		return "payment_declined"
	case outFailed:
		return "payment_failed"
	case outDiverged:
		return "reservation_expired"
	}
	return "pickup_expired"
}

// conflictingData is the data of the conflicting_duplicate copy of e: the
// same object with a different amount.
func conflictingData(o *order, e *event) map[string]any {
	d := make(map[string]any, len(e.data))
	for k, v := range e.data {
		d[k] = v
	}
	d["amount"] = money(o.facts.total + e.conflict)
	return d
}

// hasAmount reports whether events of the type carry an amount in their data.
func hasAmount(typ string) bool {
	switch typ {
	case OrderPlaced, PaymentRequested, PaymentAuthorized, PaymentCaptured, OrderCompleted, PaymentVoided:
		return true
	}
	return false
}
