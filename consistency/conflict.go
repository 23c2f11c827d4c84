package consistency

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Conflict is a race a workflow declares: two things that must not both
// happen unless one saw the other (cancel ∥ pick-up). Two events that make
// them with incomparable version vectors are a concurrent conflict.
//
// In YAML it is either a pair of event types,
//
//   - [PickedUp, PickupExpired]
//
// or a mapping that names the pair by event types or by steps (any event
// that enters one step against any that enters the other), with a name:
//
//   - name: cancel_vs_pickup
//     steps: [picked_up, cancelled]
type Conflict struct {
	// Name identifies the race in findings. Default: the pair, e.g.
	// "picked_up ∥ cancelled".
	Name string `yaml:"name"`
	// Types is a pair of event types.
	Types []string `yaml:"types"`
	// Steps is a pair of steps of the workflow: every event type each
	// step is entered on.
	Steps []string `yaml:"steps"`
}

// UnmarshalYAML reads the pair form ([A, B]) or the mapping form.
func (c *Conflict) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode {
		return n.Decode(&c.Types)
	}
	if n.Kind == yaml.MappingNode { // a decoder's KnownFields does not reach here
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i].Value; k != "name" && k != "types" && k != "steps" {
				return fmt.Errorf("line %d: unknown key %q in a conflict (name, types, steps)", n.Content[i].Line, k)
			}
		}
	}
	type plain Conflict // without this method
	return n.Decode((*plain)(c))
}

// label is how findings name the race.
func (c Conflict) label() string {
	if c.Name != "" {
		return c.Name
	}
	if len(c.Steps) > 0 {
		return strings.Join(c.Steps, " ∥ ")
	}
	return strings.Join(c.Types, " ∥ ")
}

// sides returns the event types of each side of the race in w.
func (c Conflict) sides(w Workflow) (a, b []string) {
	if len(c.Steps) == 2 {
		sa, _ := w.Step(c.Steps[0])
		sb, _ := w.Step(c.Steps[1])
		return sa.On, sb.On
	}
	if len(c.Types) == 2 {
		return c.Types[:1], c.Types[1:]
	}
	return nil, nil
}

// validate reports what is wrong with the i-th conflict of w.
func (c Conflict) validate(w Workflow, path string, addf func(path, format string, args ...any), known func(path, t string)) {
	switch {
	case len(c.Types) > 0 && len(c.Steps) > 0:
		addf(path, "set types or steps, not both")
	case len(c.Steps) > 0:
		if len(c.Steps) != 2 || c.Steps[0] == c.Steps[1] {
			addf(path+".steps", "want a pair of two different steps, got %v", c.Steps)
			return
		}
		for _, s := range c.Steps {
			if !slices.ContainsFunc(w.Steps, func(st Step) bool { return st.Name == s }) {
				addf(path+".steps", "no step %s in this workflow", s)
			}
		}
	default:
		if len(c.Types) != 2 || c.Types[0] == c.Types[1] {
			addf(path, "want a pair of two different event types, got %v", c.Types)
			return
		}
		for _, t := range c.Types {
			known(path, t)
		}
	}
	if c.Name != "" && !identifier.MatchString(c.Name) {
		addf(path+".name", "%q is not a name ([a-z][a-z0-9_]*)", c.Name)
	}
}
