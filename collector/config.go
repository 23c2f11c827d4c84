package collector

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/weft-sh/weft/collector/internal/redact"
	"github.com/weft-sh/weft/internal/config"
)

// Config is the collector block of weft.yaml: the tap's keys. Its lag key
// beside them configures queue health (queuehealth.Config).
type Config struct {
	// Group is the consumer group the tap commits its own offsets in. Default "weft-tap".
	Group string `yaml:"group"`
	// Topics selects the topics to tap by regular expression.
	Topics Topics `yaml:"topics"`
	// Batch bounds how much is buffered before an insert.
	Batch Batch `yaml:"batch"`
	// Fetch bounds what the Kafka client buffers: at most
	// Fetch.MaxConcurrent responses of Fetch.MaxBytes each, whatever the
	// number of brokers. While ClickHouse is down the tap stops polling, so
	// its memory stays near that plus two batches.
	Fetch Fetch `yaml:"fetch"`
	// MaxRecordBytes is the largest record value decoded; larger ones are
	// quarantined whole. Default 1 MiB.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// StartFrom is where a new group starts: "earliest" (default) or "latest".
	StartFrom string `yaml:"start_from"`
	// SessionTimeout is how long the group waits for a silent member (one
	// that crashed) before giving its partitions to another. With an
	// InstanceID a replica restarted with the same id gets its partitions
	// back at once, so this only bounds how long the partitions of a
	// replica that never comes back wait (docs/delivery.md). Default 45s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// InstanceID makes the tap a static member of its group (KIP-345): a
	// replica restarted with the same id takes its partitions back at once
	// instead of waiting out the session timeout of the one that died.
	// Every replica needs its own: the broker fences the older of two
	// members with one id, and weft stops that one. Default: none (dynamic
	// membership), but `weft run` takes $POD_NAME when it is set and
	// `weft dev` keeps one in its data directory. Letters, digits, '.',
	// '_' and '-', at most 249.
	InstanceID string `yaml:"instance_id"`
	// LeaveGroupOnStop makes a graceful stop leave the group, so the
	// partitions move to the other replicas at once (a scale-down, a
	// rolling update whose new pods have new names). false keeps a static
	// member's partitions waiting for a replica with the same instance id,
	// for up to the session timeout (a StatefulSet restarted in place: no
	// rebalance at all). A member without an instance id always leaves.
	// Default true.
	LeaveGroupOnStop bool `yaml:"leave_group_on_stop"`
	// MaxRebalance is how long the group may rebalance before /readyz says
	// the tap is not ready. A tap that owns no partition of the topics it
	// taps is not ready at once. Default 30s.
	MaxRebalance time.Duration `yaml:"max_rebalance"`
	// Mapping are per-topic rules that override the default field lookup; the
	// first rule whose topic pattern matches applies.
	Mapping []Mapping `yaml:"mapping"`
	// Redaction says what is masked before storing.
	Redaction Redaction `yaml:"redaction"`
}

// Topics selects topics by regular expressions (Go syntax, matched against the whole name).
type Topics struct {
	// Include are the patterns to tap. Default every topic not starting with "_".
	Include []string `yaml:"include"`
	// Exclude are patterns removed from Include. Default Kafka's and common
	// frameworks' internal topics.
	Exclude []string `yaml:"exclude"`
	// RefreshInterval is how often the cluster's topic list is re-read, so a
	// new topic matching Include is tapped within this long. Default 30s.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
}

// Batch bounds the insert batches.
type Batch struct {
	// MaxRecords flushes when this many records are buffered. Default 10000.
	MaxRecords int `yaml:"max_records"`
	// FlushInterval flushes at least this often when anything is buffered. Default 500ms.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// DrainTimeout is how long a graceful stop keeps storing and committing
	// what the tap has buffered; what is not stored by then is read again
	// on the next start. Default 10s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// Fetch bounds the Kafka client's fetches.
type Fetch struct {
	// MaxBytes is the most one fetch response may carry (compressed; it
	// takes several times that once decompressed). Default 8 MiB.
	MaxBytes int32 `yaml:"max_bytes"`
	// MaxPartitionBytes is the most one partition contributes to a fetch
	// (a larger single record is still returned whole). Default 1 MiB.
	MaxPartitionBytes int32 `yaml:"max_partition_bytes"`
	// MaxConcurrent is how many fetch responses may be in flight or
	// buffered at once, over all brokers: one being decoded while the next
	// arrives. It overrides franz-go's default of one per broker, so a large
	// cluster does not multiply the buffer. Default 2.
	MaxConcurrent int `yaml:"max_concurrent"`
}

// Redaction configures masking of sensitive data.
type Redaction struct {
	// Keys are extra JSON keys whose values are masked, beyond the defaults
	// (card_number, cvv, email, phone, …).
	Keys []string `yaml:"keys"`
	// Cards masks Luhn-valid card numbers found anywhere. Default true.
	Cards *bool `yaml:"cards"`
	// Emails masks e-mail addresses found anywhere. Default true.
	Emails *bool `yaml:"emails"`
}

// Mapping overrides where the fields of the event contract are read from, for
// the topics its pattern matches. Each field is a list of sources tried in
// order: a JSON path into the record value ("data.order_id"), a header
// ("header:x-order-id"), the record key ("key"), or a constant ("const:orders").
// An empty list keeps the default lookup for that field.
type Mapping struct {
	// Topic is the regular expression of the topics the rule applies to.
	Topic          string   `yaml:"topic"`
	OrderID        []string `yaml:"order_id"`
	EventID        []string `yaml:"event_id"`
	Type           []string `yaml:"type"`
	Service        []string `yaml:"service"`
	Time           []string `yaml:"time"`
	CausationID    []string `yaml:"causation_id"`
	CorrelationID  []string `yaml:"correlation_id"`
	VersionVector  []string `yaml:"version_vector"`
	IdempotencyKey []string `yaml:"idempotency_key"`
}

// Default returns the collector defaults.
func Default() Config {
	return Config{
		Group: "weft-tap",
		Topics: Topics{
			Include:         []string{`[^_].*`},
			Exclude:         []string{`__.*`, `_schemas`, `_confluent.*`, `connect-(configs|offsets|status).*`, `.*-(changelog|repartition)`},
			RefreshInterval: 30 * time.Second,
		},
		Batch:            Batch{MaxRecords: 10000, FlushInterval: 500 * time.Millisecond, DrainTimeout: 10 * time.Second},
		Fetch:            Fetch{MaxBytes: 8 << 20, MaxPartitionBytes: 1 << 20, MaxConcurrent: 2},
		MaxRecordBytes:   1 << 20,
		StartFrom:        "earliest",
		SessionTimeout:   45 * time.Second,
		LeaveGroupOnStop: true,
		MaxRebalance:     30 * time.Second,
	}
}

// Validate reports every problem with its key.
func (c Config) Validate() error {
	var p config.Problems
	if strings.TrimSpace(c.Group) == "" {
		p.Addf("group", "must not be empty")
	}
	if len(c.Topics.Include) == 0 {
		p.Addf("topics.include", "at least one pattern is required")
	}
	p.CheckPatterns("topics.include", c.Topics.Include)
	p.CheckPatterns("topics.exclude", c.Topics.Exclude)
	if c.Topics.RefreshInterval < time.Second {
		p.Addf("topics.refresh_interval", "must be at least 1s, got %s", c.Topics.RefreshInterval)
	}
	if c.Batch.MaxRecords <= 0 {
		p.Addf("batch.max_records", "must be positive, got %d", c.Batch.MaxRecords)
	}
	if c.Batch.FlushInterval <= 0 {
		p.Addf("batch.flush_interval", "must be positive, got %s", c.Batch.FlushInterval)
	}
	if c.Fetch.MaxBytes <= 0 {
		p.Addf("fetch.max_bytes", "must be positive, got %d", c.Fetch.MaxBytes)
	}
	if c.Fetch.MaxPartitionBytes <= 0 || c.Fetch.MaxPartitionBytes > c.Fetch.MaxBytes {
		p.Addf("fetch.max_partition_bytes", "must be positive and at most fetch.max_bytes, got %d", c.Fetch.MaxPartitionBytes)
	}
	if c.Fetch.MaxConcurrent <= 0 {
		p.Addf("fetch.max_concurrent", "must be positive, got %d", c.Fetch.MaxConcurrent)
	}
	if c.MaxRecordBytes <= 0 {
		p.Addf("max_record_bytes", "must be positive, got %d", c.MaxRecordBytes)
	}
	if c.Batch.DrainTimeout <= 0 {
		p.Addf("batch.drain_timeout", "must be positive, got %s", c.Batch.DrainTimeout)
	}
	if c.SessionTimeout < time.Second {
		p.Addf("session_timeout", "must be at least 1s, got %s", c.SessionTimeout)
	}
	if err := checkInstanceID(c.InstanceID); err != nil {
		p.Addf("instance_id", "%v", err)
	}
	if c.MaxRebalance < time.Second {
		p.Addf("max_rebalance", "must be at least 1s, got %s", c.MaxRebalance)
	}
	switch c.StartFrom {
	case "earliest", "latest":
	default:
		p.Addf("start_from", "%q is not earliest or latest", c.StartFrom)
	}
	for i, m := range c.Mapping {
		path := fmt.Sprintf("mapping[%d]", i)
		if m.Topic == "" {
			p.Addf(path+".topic", "required")
		} else if _, err := regexp.Compile(m.Topic); err != nil {
			p.Addf(path+".topic", "%v", err)
		}
		for field, srcs := range m.fields() {
			for j, s := range srcs {
				if err := checkSource(s); err != nil {
					p.Addf(fmt.Sprintf("%s.%s[%d]", path, field, j), "%v", err)
				}
			}
		}
	}
	return p.Err()
}

// checkInstanceID applies the broker's rule for group.instance.id (empty:
// none).
func checkInstanceID(id string) error {
	if len(id) > 249 {
		return fmt.Errorf("%d characters, at most 249", len(id))
	}
	if i := strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}); i >= 0 {
		return fmt.Errorf("%q: only letters, digits, '.', '_' and '-' (not %q)", id, id[i:i+1])
	}
	if id == "." || id == ".." {
		return fmt.Errorf("%q is not a valid instance id", id)
	}
	return nil
}

func (m Mapping) fields() map[string][]string {
	return map[string][]string{
		"order_id": m.OrderID, "event_id": m.EventID, "type": m.Type, "service": m.Service,
		"time": m.Time, "causation_id": m.CausationID, "correlation_id": m.CorrelationID,
		"version_vector": m.VersionVector, "idempotency_key": m.IdempotencyKey,
	}
}

func checkSource(s string) error {
	switch {
	case s == "key":
	case strings.HasPrefix(s, "header:") && len(s) > len("header:"):
	case strings.HasPrefix(s, "const:"):
	case s != "" && !strings.ContainsAny(s, " :"):
	default:
		return fmt.Errorf("%q is not a JSON path, header:NAME, key or const:VALUE", s)
	}
	return nil
}

// Policy describes in one line what r masks: the mask_policy an evidence
// bundle claims (docs/audit.md, "Evidence bundle").
func (r Redaction) Policy() string {
	rules := r.rules()
	parts := []string{"the values of the JSON keys " + strings.Join(rules.Keys, ", ")}
	if rules.Cards {
		parts = append(parts, "Luhn-valid card numbers (last four digits kept)")
	}
	if rules.Emails {
		parts = append(parts, "e-mail addresses (domain kept)")
	}
	return "masked before storing: " + strings.Join(parts, "; ")
}

func (r Redaction) rules() redact.Rules {
	rules := redact.Default()
	rules.Keys = append(append([]string(nil), rules.Keys...), r.Keys...)
	if r.Cards != nil {
		rules.Cards = *r.Cards
	}
	if r.Emails != nil {
		rules.Emails = *r.Emails
	}
	return rules
}
