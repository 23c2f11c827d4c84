package consistency

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/demo"
)

// leakScanner finds personal data the masking policy covers
// (docs/event-contract.md, "Masking") in stored text, independently of
// the tap's redactor: card numbers that pass the Luhn check, e-mail
// addresses not masked to ***@domain, and given CVV values.
type leakScanner struct {
	cvvs []*regexp.Regexp
}

// A leak is one piece of personal data found, and what it is.
type leak struct{ kind, value string }

var (
	// digitRun is a run of digits, single spaces or dashes between them.
	digitRun = regexp.MustCompile(`[0-9]+(?:[ -][0-9]+)*`)
	// anEmail is any e-mail address; a masked one (***@domain) has no
	// local part this matches next to its '@'.
	anEmail = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)
)

func newLeakScanner(cvvs []string) *leakScanner {
	s := &leakScanner{}
	for _, c := range cvvs {
		// The CVV as a number of its own, not inside a longer word or
		// number (a hash) nor a dash-joined identifier (a UUID's group
		// that happens to be these four digits).
		s.cvvs = append(s.cvvs, regexp.MustCompile(`(?:^|[^0-9A-Za-z-])(`+regexp.QuoteMeta(c)+`)(?:[^0-9A-Za-z-]|$)`))
	}
	return s
}

// scan returns the leaks in text; text stored as "base64:…" (a
// quarantined record that was not UTF-8) is decoded and scanned too.
func (s *leakScanner) scan(text string) []leak {
	out := s.scanText(text)
	for _, part := range strings.Split(text, "base64:")[1:] {
		end := strings.IndexFunc(part, func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '/' || r == '=')
		})
		if end < 0 {
			end = len(part)
		}
		if b, err := base64.StdEncoding.DecodeString(part[:end]); err == nil {
			out = append(out, s.scanText(string(b))...)
		}
	}
	return out
}

func (s *leakScanner) scanText(text string) []leak {
	var out []leak
	for _, loc := range digitRun.FindAllStringIndex(text, -1) {
		if wordByte(text, loc[0]-1) || wordByte(text, loc[1]) {
			continue // part of a word: a hash, an identifier
		}
		if card := luhnWindow(text[loc[0]:loc[1]]); card != "" && !recentEpoch(card) {
			out = append(out, leak{"card number", card})
		}
	}
	for _, m := range anEmail.FindAllString(text, -1) {
		out = append(out, leak{"e-mail", m})
	}
	for _, re := range s.cvvs {
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			out = append(out, leak{"cvv", m[1]})
		}
	}
	return out
}

// wordByte reports whether text[i] exists and is a letter, digit or '_'.
func wordByte(text string, i int) bool {
	if i < 0 || i >= len(text) {
		return false
	}
	c := text[i]
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// luhnWindow returns the first run of whole digit groups in run (groups
// are split by the spaces or dashes) with 13–19 digits that passes the
// Luhn check, or "".
func luhnWindow(run string) string {
	groups := strings.FieldsFunc(run, func(r rune) bool { return r == ' ' || r == '-' })
	for i := range groups {
		digits := ""
		for j := i; j < len(groups) && len(digits)+len(groups[j]) <= 19; j++ {
			digits += groups[j]
			if len(digits) >= 13 && luhn(digits) {
				return digits
			}
		}
	}
	return ""
}

// recentEpoch reports whether digits read as a Unix time in milliseconds,
// microseconds or nanoseconds falls in 2020–2029: a timestamp (ClickHouse
// writes maps of them), not a card number — no card network issues
// numbers that start with 1.
func recentEpoch(digits string) bool {
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return false
	}
	var at time.Time
	switch len(digits) {
	case 13:
		at = time.UnixMilli(n)
	case 16:
		at = time.UnixMicro(n)
	case 19:
		at = time.Unix(0, n)
	default:
		return false
	}
	return at.Year() >= 2020 && at.Year() < 2030
}

func luhn(digits string) bool {
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// storedLeak is a leak and where it is stored.
type storedLeak struct {
	table, column string
	leak
	text string // the stored value, shortened around the leak
}

func (l storedLeak) String() string {
	return fmt.Sprintf("%s.%s: %s %q in %q", l.table, l.column, l.kind, l.value, l.text)
}

// scanDatabase reads every column of every table of db, each value cast
// to a string, and returns every leak in them: all rows of all versions,
// merged or not, so nothing stored escapes.
func scanDatabase(ctx context.Context, t *testing.T, conn driver.Conn, db string, s *leakScanner) (leaks []storedLeak, values int) {
	t.Helper()
	rows, err := conn.Query(ctx, "SELECT table, name FROM system.columns WHERE database = ? ORDER BY table, position", db)
	require.NoError(t, err)
	type column struct{ table, name string }
	var cols []column
	for rows.Next() {
		var c column
		require.NoError(t, rows.Scan(&c.table, &c.name))
		cols = append(cols, c)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, cols, "no columns in %s", db)
	for _, c := range cols {
		qctx := clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"db": db, "table": c.table, "column": c.name}))
		vals, err := conn.Query(qctx, "SELECT toString({column:Identifier}) FROM {db:Identifier}.{table:Identifier}")
		require.NoError(t, err, "%s.%s", c.table, c.name)
		for vals.Next() {
			var v string
			require.NoError(t, vals.Scan(&v))
			values++
			if traceColumns[c.name] && w3cID.MatchString(v) {
				continue // a W3C trace-context id: random hex, exempt (docs/event-contract.md)
			}
			for _, l := range s.scan(v) {
				leaks = append(leaks, storedLeak{table: c.table, column: c.name, leak: l, text: around(v, l.value)})
			}
		}
		require.NoError(t, vals.Err())
		vals.Close()
	}
	return leaks, values
}

// traceColumns hold W3C trace-context ids, which masking leaves as they are:
// random hex that, one span in tens of thousands, is all digits and passes
// the Luhn check. They are exempt when they have the form of one.
var (
	traceColumns = map[string]bool{"trace_id": true, "span_id": true, "parent_span_id": true}
	w3cID        = regexp.MustCompile(`^(?:[0-9a-f]{16}|[0-9a-f]{32})$`)
)

// around shortens text to the part around sub.
func around(text, sub string) string {
	i := strings.Index(text, sub)
	if i < 0 || len(text) <= 160 {
		return text
	}
	return text[max(i-60, 0):min(i+len(sub)+60, len(text))]
}

// TestLeakScanner: the scanner finds what masking must not let through,
// however it is written, and leaves masked values, hashes and timestamps
// alone.
func TestLeakScanner(t *testing.T) {
	s := newLeakScanner([]string{"0417"})
	for _, tc := range []struct {
		text string
		want []leak
	}{
		{`{"card_number":"4111111111111111"}`, []leak{{"card number", "4111111111111111"}}},
		{`card=4111 1111 1111 1111; cvv=0417`, []leak{{"card number", "4111111111111111"}, {"cvv", "0417"}}},
		{`pan 5555-5555-5555-4444 2222`, []leak{{"card number", "5555555555554444"}}},
		{`{'ada.okafor12@example.com': 1}`, []leak{{"e-mail", "ada.okafor12@example.com"}}},
		{`x-subscriber.ada@example.com`, []leak{{"e-mail", "x-subscriber.ada@example.com"}}},
		{`"cvv":0417,`, []leak{{"cvv", "0417"}}},
		{"base64:" + base64.StdEncoding.EncodeToString([]byte("\xff{\"cvv\":\"0417\"")), []leak{{"cvv", "0417"}}},
		// Masked, or not personal data.
		{`{"card_number":"************1111","cvv":"***","email":"***@example.com"}`, nil},
		{`{'***@example.com#2':'sms'}`, nil},
		{`4111111111111112`, nil}, // fails Luhn
		{`a04174111111111111111b 0417c 2026-03-14 15:09:26.417`, nil},
		{`9f3a4111111111111111e2`, nil},
		{`{'OrderPlaced':1796285801926}`, nil}, // epoch milliseconds that pass Luhn
		{`2221000000000009`, []leak{{"card number", "2221000000000009"}}},
	} {
		assert.Equal(t, tc.want, s.scan(tc.text), tc.text)
	}
}

// TestHostileTrafficMaskedOnDecode is the masking scan of
// TestHostileTrafficProperty without servers: every record of every run's
// traffic, decoded (or quarantined) as the tap does, holds no personal
// data in anything the tap stores of it.
func TestHostileTrafficMaskedOnDecode(t *testing.T) {
	dec, err := collector.NewDecoder(collector.Default())
	require.NoError(t, err)
	s := newLeakScanner(demo.CVVs())
	for _, run := range hostileRuns(t) {
		t.Run(fmt.Sprintf("seed=%d", run.seed), func(t *testing.T) {
			plan, err := demo.Plan(hostileConfig(run, "unit", time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)))
			require.NoError(t, err)
			var leaks []string
			check := func(r *kgo.Record, field, text string) {
				for _, l := range s.scan(text) {
					leaks = append(leaks, fmt.Sprintf("%s/%d %s: %s %q in %q", r.Topic, r.Offset, field, l.kind, l.value, around(text, l.value)))
				}
			}
			for i, rec := range plan.Records {
				r := *rec
				r.Offset = int64(i)
				e, err := dec.Decode(&r)
				if err != nil {
					q := dec.Quarantine(&r, err.Error())
					check(&r, "quarantine key", string(q.Key))
					check(&r, "quarantine value", string(q.Value))
					check(&r, "quarantine reason", q.Reason)
					for k, v := range q.Headers {
						check(&r, "quarantine header", k+": "+v)
					}
					continue
				}
				for field, text := range map[string]string{"key": e.Key, "event id": e.EventID, "type": e.Type,
					"service": e.Service, "order id": e.OrderID, "causation id": e.CausationID,
					"correlation id": e.CorrelationID, "idempotency key": e.IdempotencyKey, "trace id": e.TraceID,
					"span id": e.SpanID, "parent span id": e.ParentSpanID, "trace state": e.TraceState, "payload": string(e.Payload)} {
					if strings.HasSuffix(field, "span id") || field == "trace id" {
						if w3cID.MatchString(text) {
							continue // exempt, as in scanDatabase
						}
					}
					check(&r, field, text)
				}
				for k, v := range e.Headers {
					check(&r, "header", k+": "+v)
				}
			}
			slices.Sort(leaks)
			assertNone(t, leaks, "personal data the tap would store")
		})
	}
}
