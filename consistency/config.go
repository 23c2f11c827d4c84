package consistency

import (
	"fmt"
	"regexp"
	"time"

	"github.com/weft-sh/weft/internal/config"
)

var identifier = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Config is the consistency block of weft.yaml.
type Config struct {
	// Interval between detector passes. Default 15s.
	Interval time.Duration `yaml:"interval"`
	// Builtin enables the built-in BOPIS and async-payment workflows. Default true.
	Builtin *bool `yaml:"builtin"`
	// Workflows are the team's own workflows, in the same form as the built-in ones.
	Workflows []Workflow `yaml:"workflows"`
	// Windows say how long the checks wait before calling something missing
	// or divergent. Defaults: grace 2m, convergence 5m.
	Windows Windows `yaml:"windows"`
	// Settle is how long after it was stored (its ingested_at) a row may
	// still become visible: an insert in flight when a pass runs, a
	// replica whose clock runs behind. Passes look at rows stored, and
	// SLA deadlines passed, at least this long ago, so findings appear
	// this much later. A row that becomes visible later still is checked
	// when its order next changes. Default 10s.
	Settle time.Duration `yaml:"settle"`
	// BacklogInterval is how often passes run, at most, while the tap is
	// catching up on a backlog (more than two batches behind the end of
	// the log): the orders of a backlog are then checked once their events
	// are in rather than at every pass, and the tap keeps the machine.
	// At most 3 × interval + 1m (`weft stuck` takes a detector silent for
	// longer as stopped); at or below interval (0 too) passes run every
	// interval regardless. Default 1m.
	BacklogInterval time.Duration `yaml:"backlog_interval"`
	// Services maps a service that workflow steps name as owner to the
	// consumer groups it reads with, so weft can say why an order waiting
	// on it is stuck (not delivered, no answer…). A service not listed has
	// the groups whose name equals or starts with its name. Default none.
	// `weft services suggest` proposes entries from what it observes.
	Services map[string]Service `yaml:"services"`
}

// Default returns the consistency defaults.
func Default() Config {
	return Config{Interval: 15 * time.Second, Settle: 10 * time.Second, BacklogInterval: time.Minute,
		Windows: Windows{Grace: 2 * time.Minute, Convergence: 5 * time.Minute}}
}

// Validate reports every problem with its key.
func (c Config) Validate() error {
	var p config.Problems
	if c.Interval <= 0 {
		p.Addf("interval", "must be positive, got %s", c.Interval)
	}
	if c.Settle < 0 {
		p.Addf("settle", "must not be negative")
	}
	if b := c.BacklogInterval; b < 0 || c.Interval > 0 && b > maxSilence(c.Interval) {
		p.Addf("backlog_interval", "must be between 0 and 3 × interval + 1m (%s), got %s", maxSilence(c.Interval), b)
	}
	if c.Windows.Grace < 0 {
		p.Addf("windows.grace", "must not be negative")
	}
	if c.Windows.Convergence < 0 {
		p.Addf("windows.convergence", "must not be negative")
	}
	seen := map[string]bool{}
	for _, w := range c.AllWorkflows() {
		if seen[w.Name] {
			p.Addf("workflows", "workflow %q is defined twice", w.Name)
		}
		seen[w.Name] = true
	}
	for i, w := range c.Workflows {
		p.Merge(fmt.Sprintf("workflows[%d]", i), w.withDefaults().Validate())
	}
	validateServices(c.Services, c.AllWorkflows(), &p)
	return p.Err()
}

// AllWorkflows returns the built-in workflows (unless disabled) and the configured ones.
func (c Config) AllWorkflows() []Workflow {
	var out []Workflow
	if c.Builtin == nil || *c.Builtin {
		out = append(out, Builtin()...)
	}
	for _, w := range c.Workflows {
		out = append(out, w.withDefaults())
	}
	return out
}
