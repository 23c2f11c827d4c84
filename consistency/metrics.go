package consistency

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-sh/weft/internal/chstore"
)

// alertGauges are the detector's metrics meant for alert rules: stuck
// orders by workflow, step and reason, open findings by kind, and the
// oldest stuck order per workflow. Their labels are bounded by the
// configuration (workflows, steps, the five reasons, the finding kinds),
// never by orders; every combination is exported, zero included, so an
// alert can tell "none" from "not measured".
type alertGauges struct {
	stuck  *prometheus.GaugeVec
	open   *prometheus.GaugeVec
	oldest *prometheus.GaugeVec
}

func newAlertGauges() alertGauges {
	return alertGauges{
		stuck: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "weft", Name: "stuck_orders",
			Help: "Orders stuck past their step's SLA, by workflow, step and why (not-delivered, no-answer, dead-lettered, no-consumer, unknown), after the last detector pass."},
			[]string{"workflow", "step", "reason"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "weft", Name: "findings_open",
			Help: "Findings open or acknowledged after the last detector pass, by kind."}, []string{"kind"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "weft", Name: "stuck_oldest_seconds",
			Help: "How long the longest-stuck order of each workflow has been in its step (on the stream's clock); 0 when none is stuck."},
			[]string{"workflow"}),
	}
}

func (g alertGauges) collectors() []prometheus.Collector {
	return []prometheus.Collector{g.stuck, g.open, g.oldest}
}

// set renders the stored counts at stream time clock.
func (g alertGauges) set(ws []Workflow, stuck []chstore.StuckCount, open []chstore.FindingCount, clock Clock) {
	g.stuck.Reset()
	g.open.Reset()
	g.oldest.Reset()
	for _, w := range ws {
		g.oldest.WithLabelValues(w.Name).Set(0)
		for _, st := range w.Steps {
			if st.Terminal {
				continue
			}
			for _, r := range Reasons {
				g.stuck.WithLabelValues(w.Name, st.Name, r).Set(0)
			}
		}
	}
	for _, k := range Kinds {
		g.open.WithLabelValues(k).Set(0)
	}
	oldest := map[string]float64{}
	for _, c := range stuck {
		reason := c.Reason
		if reason == "" {
			reason = ReasonUnknown // stored before weft explained stuck orders, until the next pass does
		}
		g.stuck.WithLabelValues(c.Workflow, c.Step, reason).Add(float64(c.N))
		if age := clock.Now.Sub(c.Oldest).Seconds(); age > oldest[c.Workflow] {
			oldest[c.Workflow] = age
		}
	}
	for w, age := range oldest {
		g.oldest.WithLabelValues(w).Set(age)
	}
	for _, c := range open {
		g.open.WithLabelValues(c.Kind).Add(float64(c.N))
	}
}
