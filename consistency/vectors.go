package consistency

// Vector is a version vector: service → counter.
type Vector map[string]uint64

// Dominates reports a ≥ b pointwise.
func (a Vector) Dominates(b Vector) bool {
	for k, v := range b {
		if a[k] < v {
			return false
		}
	}
	return true
}

// StrictlyDominates reports a ≥ b pointwise and a ≠ b.
func (a Vector) StrictlyDominates(b Vector) bool {
	return a.Dominates(b) && !b.Dominates(a)
}

// Concurrent reports that neither vector dominates the other.
func (a Vector) Concurrent(b Vector) bool {
	return !a.Dominates(b) && !b.Dominates(a)
}

// Merge returns the pointwise maximum of vs (ClickHouse's maxMap).
func Merge(vs ...Vector) Vector {
	out := Vector{}
	for _, v := range vs {
		for k, c := range v {
			out[k] = max(out[k], c)
		}
	}
	return out
}

// deriveVectors gives every event a vector: the one it carries, or, when it
// carries none, the pointwise max of its cause's vector (the cause it
// names, else its parent in the stitched chain) and the service's last
// vector in this order, with the service's own entry one more
// (docs/consistency.md, "Version vectors"). evs must be in causal order.
func deriveVectors(evs []ChainEvent) map[string]Vector {
	out := make(map[string]Vector, len(evs))
	last := map[string]Vector{} // service → its latest vector in this order
	for _, e := range evs {
		if len(e.VersionVector) > 0 {
			v := Vector(e.VersionVector)
			if c, ok := out[e.CausationID]; ok && e.CausationID != "" && !v.Dominates(c) {
				// The event saw the cause it names, whatever its vector says:
				// a cause from a service that sends no vectors has entries
				// an instrumented service's vector cannot know of.
				// (checkCausality judges the carried vectors alone.)
				v = Merge(v, c)
			}
			out[e.EventID] = v
			last[e.Service] = Merge(last[e.Service], v)
			continue
		}
		// Without a named cause, the event hangs under the one the chain
		// found for it (its trace parent, else the workflow's step order:
		// stitch), so services that publish only the contract's four
		// fields still form one history.
		cause := e.CausationID
		if cause == "" {
			cause = e.Parent
		}
		v := Merge(out[cause], last[e.Service])
		v[e.Service]++
		out[e.EventID] = v
		last[e.Service] = v
	}
	return out
}
