package demo

import (
	"math"
	"slices"
	"strings"
	"time"
)

// ConsumersConfig makes the shop's services consumers of the demo traffic,
// so that queue health (`weft lag`, the queue-health dashboard) shows
// application lag and not only weft's: each service reads its upstream
// topics (UpstreamTopics) in a consumer group of its own and commits what
// it read; it produces nothing, the generator produces every event. One
// service can fall behind and one can stop; the others keep up. Consumers
// read live traffic: they start where the topics end (see NewConsumers).
type ConsumersConfig struct {
	// Enabled runs the services' consumer groups. Default true.
	Enabled bool `json:"enabled" yaml:"enabled"`
	// GroupPrefix is put before every group name, which is GroupPrefix +
	// service + "-svc" (inventory-svc, payments-svc…). Default "". It allows
	// only the characters of topic names.
	GroupPrefix string `json:"group_prefix" yaml:"group_prefix"`
	// Lagging is the service (see Services) that falls behind: it reads at
	// most LaggingRate records per second, so its lag in messages and in
	// seconds grows steadily; "" for none. Default "fulfillment" (it reads
	// the payments topic, which gets two or more records per order).
	Lagging string `json:"lagging" yaml:"lagging"`
	// LaggingRate is the records per second the lagging service reads, over
	// all its topics. It must be positive and, with live mode on, below
	// live.rate: every order puts at least one record on most services'
	// upstream topics, so a service slower than that falls behind. Default
	// 0.5.
	LaggingRate float64 `json:"lagging_rate" yaml:"lagging_rate"`
	// Stopping is the service that stops: it keeps up for StopAfter, then
	// commits, leaves its group for good (the group becomes Empty) and never
	// reads again, while its lag grows; "" for none. Default "notifications".
	Stopping string `json:"stopping" yaml:"stopping"`
	// StopAfter is how long the stopping service reads before it stops,
	// counted from when the consumers start. Default 1m; must be positive.
	StopAfter time.Duration `json:"stop_after" yaml:"stop_after"`
}

// DefaultConsumers returns the default consumers: every service in its own
// group, fulfillment reading 0.5 records per second, notifications stopping
// after a minute.
func DefaultConsumers() ConsumersConfig {
	return ConsumersConfig{
		Enabled:     true,
		Lagging:     ServiceFulfillment,
		LaggingRate: 0.5,
		Stopping:    ServiceNotifications,
		StopAfter:   time.Minute,
	}
}

// Behavior is how a demo service consumes.
type Behavior string

// Behaviors.
const (
	// BehaviorKeepsUp: reads and commits everything as it arrives.
	BehaviorKeepsUp Behavior = "keeps_up"
	// BehaviorLagging: reads at a throttled rate below its topics' produce rate.
	BehaviorLagging Behavior = "lagging"
	// BehaviorStopped: read for a while, then left its group for good.
	BehaviorStopped Behavior = "stopped"
)

// ConsumerGroup is one demo service consuming as a consumer group, as the
// manifest records it.
type ConsumerGroup struct {
	// Service is the service's name, e.g. "fulfillment".
	Service string `json:"service"`
	// Group is the consumer group id, e.g. "fulfillment-svc".
	Group string `json:"group"`
	// Topics are the full names of the topics it reads.
	Topics   []string `json:"topics"`
	Behavior Behavior `json:"behavior"`
	// Rate is the lagging service's records per second (0 for the others).
	Rate float64 `json:"rate,omitempty"`
	// StopAfter is how long the stopping service reads (0 for the others;
	// nanoseconds in JSON, as every time.Duration of the demo).
	StopAfter time.Duration `json:"stop_after,omitempty"`
}

// ConsumerGroups returns the consumer groups the config describes, one per
// service in Services order; nil when the consumers are disabled.
func (c Config) ConsumerGroups() []ConsumerGroup {
	cc := c.Consumers
	if !cc.Enabled {
		return nil
	}
	var out []ConsumerGroup
	for _, svc := range Services() {
		g := ConsumerGroup{Service: svc, Group: cc.GroupPrefix + svc + "-svc", Behavior: BehaviorKeepsUp}
		for _, base := range UpstreamTopics(svc) {
			g.Topics = append(g.Topics, c.Topics.Name(base))
		}
		switch svc {
		case cc.Lagging:
			g.Behavior, g.Rate = BehaviorLagging, cc.LaggingRate
		case cc.Stopping:
			g.Behavior, g.StopAfter = BehaviorStopped, cc.StopAfter
		}
		out = append(out, g)
	}
	return out
}

// validate adds the problems of the consumers block (paths under
// "consumers."); liveRate is live.rate.
func (cc ConsumersConfig) validate(liveRate float64, bad func(path, format string, args ...any)) {
	if !cc.Enabled {
		return
	}
	if i := strings.IndexFunc(cc.GroupPrefix, func(r rune) bool { return !topicRune(r) }); i >= 0 {
		bad("consumers.group_prefix", "%q has %q; group names here allow only a-z A-Z 0-9 . _ -", cc.GroupPrefix, cc.GroupPrefix[i:i+1])
	}
	services := Services()
	for _, f := range []struct{ path, v string }{{"consumers.lagging", cc.Lagging}, {"consumers.stopping", cc.Stopping}} {
		if f.v != "" && !slices.Contains(services, f.v) {
			bad(f.path, "unknown service %q (want one of %s, or empty for none)", f.v, strings.Join(services, ", "))
		}
	}
	if cc.Lagging != "" && cc.Lagging == cc.Stopping {
		bad("consumers", "lagging and stopping name the same service %q", cc.Lagging)
	}
	if cc.Lagging != "" {
		switch r := cc.LaggingRate; {
		case r <= 0 || math.IsNaN(r) || math.IsInf(r, 0):
			bad("consumers.lagging_rate", "must be a finite rate > 0 records per second, got %v", r)
		case liveRate > 0 && r >= liveRate:
			bad("consumers.lagging_rate", "must be below live.rate (%v orders per second) for %s to fall behind, got %v",
				liveRate, cc.Lagging, r)
		}
	}
	if cc.Stopping != "" && cc.StopAfter <= 0 {
		bad("consumers.stop_after", "must be positive, got %s", cc.StopAfter)
	}
}
