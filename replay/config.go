package replay

import (
	"fmt"
	"regexp"

	"github.com/weft-sh/weft/internal/config"
	"github.com/weft-sh/weft/internal/kafkaconn"
)

// Config is the replay block of weft.yaml.
type Config struct {
	// Enabled allows replay and redrive at all. Default false: weft only
	// reads until an operator turns it on.
	Enabled bool `yaml:"enabled"`
	// Allow are regular expressions (matched against whole topic names)
	// of the topics weft may produce to. A job with a target outside them
	// is refused whole. Default none: nothing may be produced.
	Allow []string `yaml:"allow"`
	// Kafka is the client replay produces and reads back with, so the
	// tap's principal keeps read-only ACLs. Each key left unset takes the
	// kafka block's value (tls and sasl as whole blocks: set
	// replay.kafka.sasl.mechanism to give replay its own principal).
	// Default: the kafka block, client id "weft-replay".
	Kafka kafkaconn.Config `yaml:"kafka"`
	// Rate caps the records produced per second by a job; --rate overrides
	// it. 0 is no cap. Default 1000.
	Rate int `yaml:"rate"`
	// ConfirmAbove is the number of records above which a job asks for
	// confirmation on a terminal (and needs --yes elsewhere). Default 100.
	ConfirmAbove int `yaml:"confirm_above"`
	// BatchRecords is the number of records in one Kafka transaction: the
	// cursor is stored after each. Default 5000 (docs/replay.md, "Speed").
	BatchRecords int `yaml:"batch_records"`
	// Redrive says where dead-lettered records go back to.
	Redrive RedriveConfig `yaml:"redrive"`
}

// RedriveConfig configures weft redrive.
type RedriveConfig struct {
	// Targets maps a dead-letter topic to the topic its records go back
	// to; it wins over the records' headers. Default none.
	Targets map[string]string `yaml:"targets"`
	// OriginalTopicHeaders are the headers, tried in order, naming the
	// topic a dead-lettered record came from. Default dlq-original-topic,
	// kafka_dlt-original-topic (Spring Kafka), __connect.errors.topic
	// (Kafka Connect).
	OriginalTopicHeaders []string `yaml:"original_topic_headers"`
}

// Default returns replay off, with its defaults.
func Default() Config {
	return Config{Rate: 1000, ConfirmAbove: 100, BatchRecords: 5000,
		Redrive: RedriveConfig{OriginalTopicHeaders: []string{"dlq-original-topic", "kafka_dlt-original-topic", "__connect.errors.topic"}}}
}

// Validate reports every problem with its key.
func (c Config) Validate() error {
	var p config.Problems
	p.CheckPatterns("allow", c.Allow)
	if c.Enabled && len(c.Allow) == 0 {
		p.Addf("allow", "required when replay.enabled is true: the topics replay may produce to")
	}
	if c.Rate < 0 {
		p.Addf("rate", "must not be negative (0 is no cap), got %d", c.Rate)
	}
	if c.ConfirmAbove < 0 {
		p.Addf("confirm_above", "must not be negative, got %d", c.ConfirmAbove)
	}
	if c.BatchRecords < 1 || c.BatchRecords > 100_000 {
		p.Addf("batch_records", "must be between 1 and 100000, got %d", c.BatchRecords)
	}
	if len(c.Kafka.Brokers) > 0 || c.Kafka.SASL.Mechanism != "" {
		// Only the keys replay sets itself; the rest are the kafka block's.
		k := c.Kafka
		if len(k.Brokers) == 0 {
			k.Brokers = []string{"127.0.0.1:9092"}
		}
		p.Merge("kafka", k.Validate())
	}
	for dlq, to := range c.Redrive.Targets {
		if dlq == "" || to == "" {
			p.Addf("redrive.targets", "%q: %q: both topics are required", dlq, to)
		}
	}
	for i, h := range c.Redrive.OriginalTopicHeaders {
		if h == "" {
			p.Addf(fmt.Sprintf("redrive.original_topic_headers[%d]", i), "empty header name")
		}
	}
	return p.Err()
}

// KafkaConfig is the connection replay uses: its own keys, the tap's
// where unset.
func (c Config) KafkaConfig(tap kafkaconn.Config) kafkaconn.Config {
	k := tap
	if len(c.Kafka.Brokers) > 0 {
		k.Brokers = c.Kafka.Brokers
	}
	k.ClientID = "weft-replay"
	if c.Kafka.ClientID != "" {
		k.ClientID = c.Kafka.ClientID
	}
	if c.Kafka.DialTimeout > 0 {
		k.DialTimeout = c.Kafka.DialTimeout
	}
	if c.Kafka.TLS != (config.TLS{}) {
		k.TLS = c.Kafka.TLS
	}
	if c.Kafka.SASL.Mechanism != "" {
		k.SASL = c.Kafka.SASL
	}
	return k
}

// allowList is Config.Allow compiled, anchored.
type allowList []*regexp.Regexp

func compileAllow(pats []string) (allowList, error) {
	var out allowList
	for _, p := range pats {
		re, err := regexp.Compile("^(?:" + p + ")$")
		if err != nil {
			return nil, fmt.Errorf("replay.allow %q: %w", p, err)
		}
		out = append(out, re)
	}
	return out, nil
}

func (a allowList) allows(topic string) bool {
	for _, re := range a {
		if re.MatchString(topic) {
			return true
		}
	}
	return false
}
