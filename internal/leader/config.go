package leader

import (
	"time"

	"github.com/weft-sh/weft/internal/config"
)

// Config is the leader block of weft's configuration.
type Config struct {
	// Enabled elects one replica to do the once-only work. Default true; a
	// single replica elects itself. false makes every replica do that work
	// (as before replicas were elected): only for a single replica, or a
	// cluster without the group's ACL.
	Enabled bool `yaml:"enabled"`
	// Group is the Kafka group the replicas join to elect their leader.
	// Default "" (<collector.group>.leader). It holds no offsets and reads
	// no topic; joining it needs Read on the group (docs/kafka-access.md).
	Group string `yaml:"group"`
	// SessionTimeout is how long the coordinator waits for a silent
	// replica before it names another leader; a leader that had no answer
	// for two thirds of it stops leading first. It must lie within the
	// broker's group.min.session.timeout.ms (6s by default) and
	// group.max.session.timeout.ms. Default 6s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
}

// Default returns the defaults: enabled, the derived group, 6 s.
func Default() Config {
	return Config{Enabled: true, SessionTimeout: 6 * time.Second}
}

// Validate reports every problem with its key.
func (c Config) Validate() error {
	var p config.Problems
	if c.SessionTimeout < time.Second || c.SessionTimeout > 30*time.Minute {
		p.Addf("session_timeout", "must be between 1s and 30m (and within the broker's group.min/max.session.timeout.ms), got %s", c.SessionTimeout)
	}
	return p.Err()
}

// WithGroup returns c with Group defaulted from the tap's group.
func (c Config) WithGroup(tapGroup string) Config {
	if c.Group == "" {
		c.Group = tapGroup + ".leader"
	}
	return c
}

// heartbeat is how often a member tells the coordinator it is alive: six
// times per session, and at least every second, since the others hear
// that a leader left at their next heartbeat (a small request: one a
// second per replica).
func (c Config) heartbeat() time.Duration {
	return min(max(c.SessionTimeout/6, 100*time.Millisecond), time.Second)
}

// fenceAfter is how long after the last confirmed heartbeat was sent a
// leader stops leading: two thirds of the session, a third before the
// coordinator could give up on it.
func (c Config) fenceAfter() time.Duration { return c.SessionTimeout - c.SessionTimeout/3 }
