package consistency

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/demo"
	contract "github.com/weft-sh/weft/internal/event"
)

// kindScore compares the findings of one kind with the manifest, order by
// order.
type kindScore struct {
	expected, raised, truePos int
	falsePos, missed          []string // the orders, described
	// transient counts findings of the kind that were raised during the
	// run and resolved by its end.
	transient int
}

func (k *kindScore) precision() string {
	if k.raised == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(k.truePos)/float64(k.raised))
}

func (k *kindScore) recall() string {
	if k.expected == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(k.truePos)/float64(k.expected))
}

// score is the findings of a run compared with its manifest.
type score struct {
	kinds map[string]*kindScore
	// sparseOrders counts the orders with sparse events; sparseDivergent
	// lists those raised divergent without being so.
	sparseOrders    int
	sparseDivergent []string
	// wrongStep lists stuck orders raised in another step than they are in.
	wrongStep []string
}

// scoreFindings compares the active findings at the end of a run with
// what each order of the manifest must raise (demo.ExpectedFinding): a
// stuck order only once the final clock passed its deadline.
func scoreFindings(m *demo.Manifest, clock Clock, active, resolved []Finding, stuck map[string]*stuckWant) score {
	sc := score{kinds: map[string]*kindScore{}}
	for _, k := range Kinds {
		sc.kinds[k] = &kindScore{}
	}
	orders := map[string]demo.OrderSummary{}
	want := map[string]string{}
	for _, o := range m.Orders {
		orders[o.ID] = o
		k := demo.ExpectedFinding(o.Fault)
		if k == KindStuck && !clock.Now.After(stuck[o.ID].deadline) {
			k = "" // not stuck yet
		}
		want[o.ID] = k
		if k != "" {
			sc.kinds[k].expected++
		}
		if o.Sparse {
			sc.sparseOrders++
		}
	}
	describe := func(id string) string {
		o, ok := orders[id]
		if !ok {
			return id + " (no such order)"
		}
		var extra []string
		if o.Sparse {
			extra = append(extra, "sparse")
		}
		if o.KeyedByEmail {
			extra = append(extra, "keyed by e-mail")
		}
		fault := string(o.Fault)
		if fault == "" {
			fault = "healthy"
		}
		return fmt.Sprintf("%s (%s, %s%s)", id, fault, o.Path, strings.Join(append([]string{""}, extra...), ", "))
	}
	raised := map[string]map[string]bool{}
	for _, f := range active {
		if raised[f.OrderID] == nil {
			raised[f.OrderID] = map[string]bool{}
		}
		if raised[f.OrderID][f.Kind] {
			continue // one finding per kind and order counts once
		}
		raised[f.OrderID][f.Kind] = true
		ks := sc.kinds[f.Kind]
		if ks == nil {
			ks = &kindScore{}
			sc.kinds[f.Kind] = ks
		}
		ks.raised++
		if want[f.OrderID] == f.Kind {
			ks.truePos++
		} else {
			ks.falsePos = append(ks.falsePos, describe(f.OrderID)+": "+f.Summary)
			if f.Kind == KindDivergence && orders[f.OrderID].Sparse {
				sc.sparseDivergent = append(sc.sparseDivergent, describe(f.OrderID))
			}
		}
		if f.Kind == KindStuck {
			if w := stuck[f.OrderID]; w != nil && f.Step != w.fault.Step {
				sc.wrongStep = append(sc.wrongStep, fmt.Sprintf("%s: in %s, raised in %s", describe(f.OrderID), w.fault.Step, f.Step))
			}
		}
	}
	for id, k := range want {
		if k != "" && !raised[id][k] {
			sc.kinds[k].missed = append(sc.kinds[k].missed, describe(id))
		}
	}
	for _, f := range resolved {
		if ks := sc.kinds[f.Kind]; ks != nil {
			ks.transient++
		}
	}
	for _, ks := range sc.kinds {
		slices.Sort(ks.falsePos)
		slices.Sort(ks.missed)
	}
	slices.Sort(sc.sparseDivergent)
	return sc
}

// table renders the score as a table, one row per finding kind.
func (sc score) table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "kind\texpected\traised\tright\tfalse\tmissed\tprecision\trecall\ttransient\t")
	for _, k := range Kinds {
		ks := sc.kinds[k]
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t\n", k, ks.expected, ks.raised, ks.truePos,
			len(ks.falsePos), len(ks.missed), ks.precision(), ks.recall(), ks.transient)
	}
	_ = w.Flush()
	fmt.Fprintf(&b, "divergence on the %d orders with sparse events: %d raised, none expected", sc.sparseOrders, len(sc.sparseDivergent))
	return b.String()
}

// checkTraffic checks that a run's traffic is as hostile as the test
// claims: every encoding, with the contract fields in headers and in band,
// sparse events, redeliveries, out-of-order orders, personal data in keys
// and header names, undecodable records — and that its CVVs occur nowhere
// in the traffic without them, so that finding one stored is a leak.
func checkTraffic(t *testing.T, cfg demo.Config, plan *demo.Batch) {
	t.Helper()
	dec, err := collector.NewDecoder(collector.Default())
	require.NoError(t, err)
	carried := map[string]int{}
	var sparse, keyed, named, broken int
	for i, r := range plan.Records {
		rc := *r
		rc.Offset = int64(i)
		e, err := dec.Decode(&rc)
		if err != nil {
			broken++
			continue
		}
		switch {
		case len(e.VersionVector) == 0:
			sparse++
		case slices.ContainsFunc(r.Headers, func(h kgo.RecordHeader) bool { return h.Key == contract.HeaderVersionVector }):
			carried[string(e.Format)+" with contract headers"]++
		default:
			carried[string(e.Format)+" in band"]++
		}
		if strings.Contains(string(r.Key), "@") {
			keyed++
		}
		if slices.ContainsFunc(r.Headers, func(h kgo.RecordHeader) bool { return strings.Contains(h.Key, "@") }) {
			named++
		}
	}
	for _, f := range []contract.Format{contract.FormatCloudEventsStructured, contract.FormatCloudEventsBinary, contract.FormatJSON} {
		for _, how := range []string{" with contract headers", " in band"} {
			assert.Positive(t, carried[string(f)+how], "%s%s", f, how)
		}
	}
	assert.Positive(t, sparse, "sparse events")
	assert.Positive(t, keyed, "records keyed by e-mail")
	assert.Positive(t, named, "header names holding an e-mail")
	assert.Equal(t, cfg.PersonalData.Undecodable, broken, "undecodable records")
	m := plan.Manifest
	for _, k := range []demo.Kind{demo.KindDuplicate, demo.KindOutOfOrder, demo.KindConflictingDuplicate} {
		assert.NotEmpty(t, m.FaultsOf(k), "%s orders", k)
	}

	// The same traffic without the personal data has no CVV anywhere.
	plain := cfg
	plain.PersonalData = demo.PersonalData{}
	without, err := demo.Plan(plain)
	require.NoError(t, err)
	s := newLeakScanner(demo.CVVs())
	for _, r := range without.Records {
		texts := []string{string(r.Key), string(r.Value)}
		for _, h := range r.Headers {
			texts = append(texts, h.Key, string(h.Value))
		}
		for _, text := range texts {
			for _, l := range s.scan(text) {
				assert.NotEqual(t, "cvv", l.kind, "CVV %s occurs in the traffic without personal data: %q", l.value, text)
			}
		}
	}
}
