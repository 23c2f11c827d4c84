package consistency

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weft-sh/weft/internal/config"
)

// Workflow names the steps of an order and the event types that move it
// between them. An order is in a workflow once it has an event of one of
// IdentifiedBy; it is in the furthest step (in list order) that any of its
// events entered.
type Workflow struct {
	// Name identifies the workflow in findings and on the command line.
	Name string `yaml:"name"`
	// Description says what the workflow is, for people.
	Description string `yaml:"description"`
	// Steps in the order an order moves through them.
	Steps []Step `yaml:"steps"`
	// IdentifiedBy are the event types that put an order into this workflow.
	// Default: every event type of every step.
	IdentifiedBy []string `yaml:"identified_by"`
	// Conflicts are the races of the workflow: pairs of event types, or of
	// steps, that must not both happen unless one saw the other; two such
	// events with incomparable version vectors are a concurrent conflict
	// (cancel ∥ pick-up). See Conflict.
	Conflicts []Conflict `yaml:"conflicts"`
	// Invariants must hold once the order reached a terminal step.
	Invariants []Invariant `yaml:"invariants"`
}

// Invariant is a rule a finished order must satisfy, e.g. "a cancelled order
// whose payment was authorized has it voided or refunded".
type Invariant struct {
	// Name identifies the invariant in findings.
	Name string `yaml:"name"`
	// Description says the rule in words, for the on-call engineer.
	Description string `yaml:"description"`
	// When are the event types (terminal ones) after which the rule applies.
	When []string `yaml:"when"`
	// IfAny restricts the rule to orders that have one of these event types.
	IfAny []string `yaml:"if_any"`
	// RequireAll event types must all be present.
	RequireAll []string `yaml:"require_all"`
	// RequireAny needs at least one of these event types present.
	RequireAny []string `yaml:"require_any"`
}

// Step is one state of a workflow.
type Step struct {
	// Name of the step, unique in the workflow.
	Name string `yaml:"name"`
	// On are the event types that move an order into this step.
	On []string `yaml:"on"`
	// SLA is how long an order may stay in this step without progress.
	// Required unless Terminal.
	SLA time.Duration `yaml:"sla"`
	// Terminal steps end the workflow: an order in one is never stuck.
	Terminal bool `yaml:"terminal"`
	// Owner is the service that owes the next event.
	Owner string `yaml:"owner"`
	// Expects are the event types that would move the order on.
	Expects []string `yaml:"expects"`
}

//go:embed workflows/*.yaml
var builtinFS embed.FS

// Builtin returns the workflows weft ships: BOPIS and async payment.
func Builtin() []Workflow {
	names, _ := fs.Glob(builtinFS, "workflows/*.yaml")
	var out []Workflow
	for _, n := range names {
		b, _ := builtinFS.ReadFile(n)
		w, err := ParseWorkflow(b)
		if err != nil {
			panic(fmt.Sprintf("built-in workflow %s: %v", n, err)) // a build defect, caught by tests
		}
		out = append(out, w)
	}
	return out
}

// ParseWorkflow reads one workflow from YAML, rejecting unknown keys.
func ParseWorkflow(b []byte) (Workflow, error) {
	var w Workflow
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&w); err != nil {
		return Workflow{}, fmt.Errorf("parse workflow: %w", err)
	}
	w = w.withDefaults()
	return w, w.Validate()
}

func (w Workflow) withDefaults() Workflow {
	if len(w.IdentifiedBy) == 0 {
		for _, s := range w.Steps {
			w.IdentifiedBy = append(w.IdentifiedBy, s.On...)
		}
	}
	return w
}

// Validate reports every problem with its key.
func (w Workflow) Validate() error {
	var p config.Problems
	if !identifier.MatchString(w.Name) {
		p.Addf("name", "%q is not a name ([a-z][a-z0-9_]*)", w.Name)
	}
	if len(w.Steps) == 0 {
		p.Addf("steps", "at least one step is required")
	}
	stepOf := map[string]string{}
	names := map[string]bool{}
	terminal := false
	for i, s := range w.Steps {
		path := fmt.Sprintf("steps[%d]", i)
		if !identifier.MatchString(s.Name) {
			p.Addf(path+".name", "%q is not a name ([a-z][a-z0-9_]*)", s.Name)
		}
		if names[s.Name] {
			p.Addf(path+".name", "step %q is defined twice", s.Name)
		}
		names[s.Name] = true
		if len(s.On) == 0 {
			p.Addf(path+".on", "at least one event type is required")
		}
		for _, t := range s.On {
			if other, ok := stepOf[t]; ok {
				p.Addf(path+".on", "event type %s already enters step %q", t, other)
			}
			stepOf[t] = s.Name
		}
		terminal = terminal || s.Terminal
		if !s.Terminal && s.SLA <= 0 {
			p.Addf(path+".sla", "a non-terminal step needs a positive SLA")
		}
	}
	if len(w.Steps) > 0 && !terminal {
		p.Addf("steps", "no terminal step: every order would end stuck")
	}
	for i, s := range w.Steps {
		for _, t := range s.Expects {
			if _, ok := stepOf[t]; !ok {
				p.Addf(fmt.Sprintf("steps[%d].expects", i), "event type %s enters no step of this workflow", t)
			}
		}
	}
	if p.Err() == nil {
		w.checkReachability(&p)
	}
	known := func(path, t string) {
		if _, ok := stepOf[t]; !ok && !w.mentions(t) {
			p.Addf(path, "event type %s appears nowhere else in this workflow", t)
		}
	}
	for i, c := range w.Conflicts {
		c.validate(w, fmt.Sprintf("conflicts[%d]", i), p.Addf, known)
	}
	for i, inv := range w.Invariants {
		path := fmt.Sprintf("invariants[%d]", i)
		if !identifier.MatchString(inv.Name) {
			p.Addf(path+".name", "%q is not a name ([a-z][a-z0-9_]*)", inv.Name)
		}
		if len(inv.When) == 0 {
			p.Addf(path+".when", "at least one event type is required")
		}
		for _, t := range inv.When {
			if st, ok := stepOf[t]; !ok {
				p.Addf(path+".when", "event type %s enters no step of this workflow", t)
			} else if s, _ := w.Step(st); !s.Terminal {
				p.Addf(path+".when", "event type %s enters step %q, which is not terminal", t, st)
			}
		}
		if len(inv.RequireAll) == 0 && len(inv.RequireAny) == 0 {
			p.Addf(path, "require_all or require_any is needed")
		}
	}
	for i, t := range w.IdentifiedBy {
		if _, ok := stepOf[t]; !ok {
			p.Addf(fmt.Sprintf("identified_by[%d]", i), "event type %s enters no step of this workflow", t)
		}
	}
	return p.Err()
}

// Step returns the step named name.
func (w Workflow) Step(name string) (Step, bool) {
	i := slices.IndexFunc(w.Steps, func(s Step) bool { return s.Name == name })
	if i < 0 {
		return Step{}, false
	}
	return w.Steps[i], true
}

// mentions reports whether an event type is named anywhere in the workflow
// other than conflicts: compensations live only in invariants.
func (w Workflow) mentions(t string) bool {
	for _, s := range w.Steps {
		if slices.Contains(s.On, t) || slices.Contains(s.Expects, t) {
			return true
		}
	}
	for _, inv := range w.Invariants {
		if slices.Contains(inv.RequireAll, t) || slices.Contains(inv.RequireAny, t) || slices.Contains(inv.IfAny, t) {
			return true
		}
	}
	return false
}

// checkReachability follows expects from the first step: every terminal
// step must be reachable, and every reachable step must be able to reach a
// terminal one (no cycle without an exit).
func (w Workflow) checkReachability(p *config.Problems) {
	stepOf := map[string]int{}
	for i, s := range w.Steps {
		for _, t := range s.On {
			stepOf[t] = i
		}
	}
	next := make([][]int, len(w.Steps))
	for i, s := range w.Steps {
		for _, t := range s.Expects {
			next[i] = append(next[i], stepOf[t])
		}
	}
	reached := map[int]bool{0: true}
	queue := []int{0}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, j := range next[i] {
			if !reached[j] {
				reached[j] = true
				queue = append(queue, j)
			}
		}
	}
	for i, s := range w.Steps {
		if s.Terminal && !reached[i] {
			p.Addf(fmt.Sprintf("steps[%d]", i), "terminal step %q is unreachable from %q through expects", s.Name, w.Steps[0].Name)
		}
	}
	// exits: steps from which a terminal step can be reached.
	exits := map[int]bool{}
	for changed := true; changed; {
		changed = false
		for i, s := range w.Steps {
			if exits[i] {
				continue
			}
			if s.Terminal || slices.ContainsFunc(next[i], func(j int) bool { return exits[j] }) {
				exits[i], changed = true, true
			}
		}
	}
	for i, s := range w.Steps {
		if reached[i] && !exits[i] {
			p.Addf(fmt.Sprintf("steps[%d]", i), "step %q cannot reach a terminal step: a cycle without an exit, or a dead end (expects: %v)", s.Name, s.Expects)
		}
	}
}
