package queuehealth

import (
	"regexp"
	"strings"
	"time"

	"github.com/weft-sh/weft/internal/config"
)

// DefaultDLQPattern matches the usual dead-letter topic names:
// payments.dlq, orders-dead-letter, fulfillment_deadletter.
const DefaultDLQPattern = `.*(\.|-|_)(dlq|dead-letter|deadletter)$`

// Config is the collector.lag block of weft.yaml: the queue-health monitor,
// which measures every consumer group reading the tapped topics (the
// applications' groups as well as weft's own) and the dead-letter topics.
// It only reads from Kafka: it never commits for any group and never
// produces.
type Config struct {
	// Enabled runs the monitor inside `weft run`. Default true.
	Enabled bool `yaml:"enabled"`
	// Interval between two samples. Default 15s; at least 1s.
	Interval time.Duration `yaml:"interval"`
	// Groups selects the consumer groups measured, among those that read a
	// tapped or dead-letter topic. Default every group.
	Groups GroupFilter `yaml:"groups"`
	// DLQPattern is the regular expression (matched against whole topic
	// names) of the dead-letter topics, whose depth and oldest record are
	// measured even when collector.topics does not tap them.
	// Default `.*(\.|-|_)(dlq|dead-letter|deadletter)$`.
	DLQPattern string `yaml:"dlq_pattern"`
	// ReadTimeout bounds, per sample, the reads of the records whose
	// timestamps give lag in seconds; a record not read in time leaves that
	// partition's lag_seconds unknown (-1) for the sample. Default 10s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
}

// GroupFilter selects consumer groups by regular expressions (Go syntax,
// matched against whole group names).
type GroupFilter struct {
	// Include are the groups measured. Default every group ('.*').
	Include []string `yaml:"include"`
	// Exclude are removed from Include. Default none.
	Exclude []string `yaml:"exclude"`
}

// Topics are the tapped topics, whose queues are measured: the tap's
// collector.topics patterns (Go syntax, matched against whole topic names),
// passed in by the wiring. The dead-letter topics are measured as well.
type Topics struct {
	// Include are the tapped topics; none measures the dead-letter topics only.
	Include []string
	// Exclude are removed from Include.
	Exclude []string
}

// Default returns the queue-health monitor defaults.
func Default() Config {
	return Config{
		Enabled:     true,
		Interval:    15 * time.Second,
		Groups:      GroupFilter{Include: []string{`.*`}},
		DLQPattern:  DefaultDLQPattern,
		ReadTimeout: 10 * time.Second,
	}
}

// Validate reports every problem with its key (relative to collector.lag).
func (c Config) Validate() error {
	var p config.Problems
	if c.Interval < time.Second {
		p.Addf("interval", "must be at least 1s, got %s", c.Interval)
	}
	if c.ReadTimeout <= 0 {
		p.Addf("read_timeout", "must be positive, got %s", c.ReadTimeout)
	}
	if len(c.Groups.Include) == 0 {
		p.Addf("groups.include", "at least one pattern is required ('.*' for every group)")
	}
	p.CheckPatterns("groups.include", c.Groups.Include)
	p.CheckPatterns("groups.exclude", c.Groups.Exclude)
	if c.DLQPattern == "" {
		p.Addf("dlq_pattern", "required")
	} else if _, err := regexp.Compile(c.DLQPattern); err != nil {
		p.Addf("dlq_pattern", "%v", err)
	}
	return p.Err()
}

// validate reports the problems of the tapped-topic patterns, with the keys
// they come from (collector.topics).
func (t Topics) validate() error {
	var p config.Problems
	p.CheckPatterns("include", t.Include)
	p.CheckPatterns("exclude", t.Exclude)
	return p.Err()
}

// wholeName compiles patterns into one expression matched against whole
// names; nil when there is none (it then matches nothing). The patterns
// must have been validated.
func wholeName(pats ...string) *regexp.Regexp {
	if len(pats) == 0 {
		return nil
	}
	alts := make([]string, len(pats))
	for i, p := range pats {
		alts[i] = "(?:" + p + ")"
	}
	return regexp.MustCompile("^(?:" + strings.Join(alts, "|") + ")$")
}

func matches(re *regexp.Regexp, s string) bool { return re != nil && re.MatchString(s) }
