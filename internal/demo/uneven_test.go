package demo

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector"
	contract "github.com/weft-sh/weft/internal/event"
)

// unevenConfig turns on every option of uneven traffic: contract fields in
// band, two sparse services, and personal data everywhere.
func unevenConfig(seed int64) Config {
	cfg := testConfig()
	cfg.Seed, cfg.Orders = seed, 150
	cfg.Faults.CancelRace = FaultShare{Count: 4}
	cfg.Encoding.InBand = true
	cfg.Encoding.Sparse = []string{ServiceOrders, ServiceNotifications}
	cfg.PersonalData = PersonalData{KeyedByEmail: 0.3, Payloads: true, Headers: true, Undecodable: 8}
	return cfg
}

// TestUnevenTrafficDecodes: with every option of uneven traffic on, the
// events are the same as without (the options draw from random streams of
// their own), and the tap's decoder reads from each record the fields the
// contract headers carry without them: in band, the same; sparse, the four
// required fields only, and the others' vectors without the sparse
// services. The undecodable records do not decode.
func TestUnevenTrafficDecodes(t *testing.T) {
	dec, err := collector.NewDecoder(collector.Default())
	require.NoError(t, err)
	for _, seed := range []int64{1, 7} {
		cfg := unevenConfig(seed)
		even := cfg
		even.Encoding.InBand, even.Encoding.Sparse, even.PersonalData = false, nil, PersonalData{}
		a, b := mustPlan(t, even), mustPlan(t, cfg)
		assert.Equal(t, 8, b.Manifest.Undecodable)
		assert.Equal(t, len(a.Records)+8, len(b.Records))
		assert.Equal(t, a.Manifest.Faults, b.Manifest.Faults)

		var evenEvents []contract.Event
		for i, r := range a.Records {
			rc := *r
			rc.Offset = int64(i)
			e, err := dec.Decode(&rc)
			require.NoError(t, err)
			evenEvents = append(evenEvents, e)
		}
		var (
			n, broken, sparse, keyed int
			inBand                   = map[contract.Format]int{}
		)
		for _, r := range b.Records {
			rc := *r
			rc.Offset = int64(n)
			e, err := dec.Decode(&rc)
			if err != nil {
				broken++
				assert.Contains(t, string(r.Key), "@", "undecodable records are keyed by e-mail")
				continue
			}
			want := evenEvents[n]
			n++
			o, _ := b.Manifest.Order(want.OrderID)
			if sparseFault(o.Fault) {
				// The instrumented services know no counter of a sparse one.
				want.VersionVector = maps.Clone(want.VersionVector)
				for _, svc := range cfg.Encoding.Sparse {
					delete(want.VersionVector, svc)
				}
			}
			if o.KeyedByEmail {
				want.CorrelationID = "session:***@example.com" // masked by the decoder
			}
			assert.Equal(t, []any{want.EventID, want.Type, want.OrderID, want.EventTime, want.Service},
				[]any{e.EventID, e.Type, e.OrderID, e.EventTime, e.Service}, "record %d", n-1)
			if bytes.Contains(r.Key, []byte("@")) {
				keyed++
			}
			if !hasHeader(r, "content-type") {
				sparse++
				assert.Equal(t, contract.FormatJSON, e.Format)
				assert.Empty(t, e.CausationID+e.CorrelationID+e.IdempotencyKey+e.TraceID, "sparse %s", e.Type)
				assert.Empty(t, e.VersionVector)
				continue
			}
			if !hasHeader(r, contract.HeaderVersionVector) {
				inBand[e.Format]++
			}
			assert.Equal(t, []any{want.CausationID, want.CorrelationID, want.IdempotencyKey, want.TraceID, want.SpanID, want.VersionVector},
				[]any{e.CausationID, e.CorrelationID, e.IdempotencyKey, e.TraceID, e.SpanID, e.VersionVector}, "%s %s", e.Format, e.Type)
		}
		assert.Equal(t, 8, broken)
		assert.Positive(t, sparse)
		assert.Positive(t, keyed)
		for _, f := range []contract.Format{contract.FormatCloudEventsStructured, contract.FormatCloudEventsBinary, contract.FormatJSON} {
			assert.Positive(t, inBand[f], "no %s record in band", f)
		}
		var sparseOrders int
		for _, o := range b.Manifest.Orders {
			if o.Sparse {
				sparseOrders++
				assert.True(t, sparseFault(o.Fault), o.Fault)
			}
		}
		assert.Positive(t, sparseOrders)
	}
}

func hasHeader(r *kgo.Record, key string) bool {
	return slices.ContainsFunc(r.Headers, func(h kgo.RecordHeader) bool { return h.Key == key })
}

// TestPersonalDataPlaced: the CVVs appear where PersonalData puts them,
// and nowhere else in the records.
func TestPersonalDataPlaced(t *testing.T) {
	b := mustPlan(t, unevenConfig(3))
	where := map[string]int{}
	for _, r := range b.Records {
		var hdr strings.Builder
		for _, h := range r.Headers {
			hdr.WriteString(h.Key + "=" + string(h.Value) + "\n")
			if strings.Contains(h.Key, "@") {
				where["header name"]++
			}
		}
		for _, cvv := range cvvs {
			if strings.Contains(string(r.Value), cvv) {
				where["value"]++
			}
			if strings.Contains(hdr.String(), cvv) {
				where["header"]++
			}
		}
	}
	for _, w := range []string{"value", "header", "header name"} {
		assert.Positive(t, where[w], "personal data in %s", w)
	}
}
