package consistency

import (
	"slices"
	"time"
)

// WorkflowState is where one order stands in one workflow.
type WorkflowState struct {
	Workflow string    `json:"workflow"`
	Step     string    `json:"step"`
	Terminal bool      `json:"terminal"`
	Entered  time.Time `json:"entered_at"`
	// Owner and Expects say what should come next and from which service
	// (empty once terminal).
	Owner   string   `json:"owner,omitempty"`
	Expects []string `json:"expects,omitempty"`
	SLA     float64  `json:"sla_seconds,omitempty"`
}

// OrderStates places an order in each workflow it belongs to, the same way
// the stuck query (chstore.StuckOrders) and the dashboards' state SQL do:
// the furthest step any of its events entered, or the furthest terminal
// step once one was reached. Workflows are ordered with the one entered last first: where
// the order waits now. dashboards' TestOrderStepRulesAgree proves the three
// agree; change them together.
func OrderStates(ws []Workflow, evs []ChainEvent) []WorkflowState {
	latest := map[string]time.Time{}
	for _, e := range evs {
		if e.EventTime.After(latest[e.Type]) {
			latest[e.Type] = e.EventTime
		}
	}
	var out []WorkflowState
	for _, w := range ws {
		if !slices.ContainsFunc(w.IdentifiedBy, func(t string) bool { _, ok := latest[t]; return ok }) {
			continue
		}
		cur, term := -1, -1
		var entered, termAt time.Time
		for i, s := range w.Steps {
			for _, t := range s.On {
				at, ok := latest[t]
				if !ok {
					continue
				}
				if s.Terminal && i > term { // the furthest terminal step, as the SQL rules take it
					term, termAt = i, at
				} else if s.Terminal && i == term && at.After(termAt) {
					termAt = at
				}
				if i > cur {
					cur, entered = i, at
				} else if i == cur && at.After(entered) {
					entered = at
				}
			}
		}
		if term >= 0 {
			cur, entered = term, termAt
		}
		if cur < 0 {
			continue
		}
		s := w.Steps[cur]
		st := WorkflowState{Workflow: w.Name, Step: s.Name, Terminal: s.Terminal, Entered: entered}
		if !s.Terminal {
			st.Owner, st.Expects, st.SLA = s.Owner, s.Expects, s.SLA.Seconds()
		}
		out = append(out, st)
	}
	slices.SortStableFunc(out, func(a, b WorkflowState) int {
		if c := b.Entered.Compare(a.Entered); c != 0 {
			return c
		}
		if a.Terminal != b.Terminal { // on a tie the unfinished one is where it waits
			if a.Terminal {
				return 1
			}
			return -1
		}
		return 0
	})
	return out
}
