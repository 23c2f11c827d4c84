package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/config"
	"github.com/weft-sh/weft/internal/httpserver"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/leader"
	"github.com/weft-sh/weft/notify"
	"github.com/weft-sh/weft/queuehealth"
	"github.com/weft-sh/weft/replay"
	"github.com/weft-sh/weft/tracing"
)

// Config is weft.yaml: one block per component.
type Config struct {
	// Log configures weft's own logs.
	Log LogConfig `yaml:"log"`
	// HTTP configures the API, /metrics, /healthz and /readyz.
	HTTP HTTPConfig `yaml:"http"`
	// Runtime configures the Go runtime of `weft run`.
	Runtime RuntimeConfig `yaml:"runtime"`
	// Kafka is the cluster the tap watches.
	Kafka kafkaconn.Config `yaml:"kafka"`
	// ClickHouse is where weft stores what it sees.
	ClickHouse chstore.Config `yaml:"clickhouse"`
	// Collector configures the tap and, under lag, queue health.
	Collector CollectorConfig `yaml:"collector"`
	// Consistency configures workflows and the detector.
	Consistency consistency.Config `yaml:"consistency"`
	// Audit configures the audit trail's keys (docs/audit.md).
	Audit auditor.Config `yaml:"audit"`
	// Alerts configures the webhooks `weft run` notifies of findings
	// (docs/runbook.md, "Webhooks").
	Alerts notify.Config `yaml:"alerts"`
	// Replay configures weft replay and weft redrive, off by default
	// (docs/replay.md).
	Replay replay.Config `yaml:"replay"`
	// Tracing gives every order an OpenTelemetry trace, exported over
	// OTLP and stored in otel_traces (docs/tracing.md).
	Tracing tracing.Config `yaml:"tracing"`
	// Leader elects the one replica that runs the detector, queue health
	// and the other once-only work (docs/replicas.md).
	Leader leader.Config `yaml:"leader"`
}

// CollectorConfig is the collector block: the tap's keys and, under lag,
// the queue-health monitor's, which measures the tapped topics' queues.
type CollectorConfig struct {
	// Config holds the tap's keys, inline: collector.group, collector.topics…
	collector.Config `yaml:",inline"`
	// Lag configures queue health (docs/queue-health.md).
	Lag queuehealth.Config `yaml:"lag"`
}

// Validate reports every problem of the block with its key.
func (c CollectorConfig) Validate() error {
	var p config.Problems
	p.Merge("", c.Config.Validate())
	p.Merge("lag", c.Lag.Validate())
	return p.Err()
}

// tapped is the tap's topic selection, whose queues are measured.
func (c CollectorConfig) tapped() queuehealth.Topics {
	return queuehealth.Topics{Include: c.Topics.Include, Exclude: c.Topics.Exclude}
}

// LogConfig configures logging.
type LogConfig struct {
	// Level is trace, debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is json, console, or auto (console on a terminal). Default auto.
	Format string `yaml:"format"`
}

// HTTPConfig configures the HTTP server.
type HTTPConfig struct {
	// Listen is the address to serve on. Default 127.0.0.1:8080; "" disables it.
	Listen string `yaml:"listen"`
	// Pprof serves Go's profiles (net/http/pprof) under /debug/pprof/ on
	// the same address, to the operator role. Default false: they reveal
	// internals and cost CPU while a profile is taken.
	Pprof bool `yaml:"pprof"`
	// Auth decides who may call the API (docs/security.md). Default on,
	// with no credentials: every /api/ request is refused until tokens or
	// an OIDC issuer are configured.
	Auth auth.Config `yaml:"auth"`
	// TLS serves HTTPS. Default off.
	TLS httpserver.TLS `yaml:"tls"`
}

// Validate reports every problem of the block with its key.
func (c HTTPConfig) Validate() error {
	var p config.Problems
	p.Merge("auth", c.Auth.Validate())
	p.Merge("tls", c.TLS.Validate())
	return p.Err()
}

// RuntimeConfig configures the Go runtime of `weft run` (memlimit.go).
type RuntimeConfig struct {
	// MemoryLimit is the soft memory limit in bytes (debug.SetMemoryLimit):
	// the garbage collector works harder as the process nears it, so a large
	// backlog does not grow the heap to twice its live size. It is soft: a
	// live heap above it is not an error, only more collections. 0 leaves
	// the runtime's default (no limit). GOMEMLIMIT, when set, wins.
	// Default 224 MiB; at least 64 MiB when set.
	MemoryLimit int64 `yaml:"memory_limit"`
}

// DefaultConfig returns every default.
func DefaultConfig() Config {
	return Config{
		Log:         LogConfig{Level: "info", Format: "auto"},
		HTTP:        HTTPConfig{Listen: "127.0.0.1:8080", Auth: auth.Default()},
		Runtime:     RuntimeConfig{MemoryLimit: defaultMemoryLimit},
		Kafka:       kafkaconn.Default(),
		ClickHouse:  chstore.Default(),
		Collector:   CollectorConfig{Config: collector.Default(), Lag: queuehealth.Default()},
		Consistency: consistency.Default(),
		Audit:       auditor.Default(),
		Alerts:      notify.Default(),
		Replay:      replay.Default(),
		Tracing:     tracing.Default(),
		Leader:      leader.Default(),
	}
}

// Validate reports every problem with its key path.
func (c Config) Validate() error {
	var p config.Problems
	switch c.Log.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		p.Addf("log.level", "%q is not trace, debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "json", "console":
	default:
		p.Addf("log.format", "%q is not auto, json or console", c.Log.Format)
	}
	if c.Runtime.MemoryLimit < 0 || c.Runtime.MemoryLimit > 0 && c.Runtime.MemoryLimit < minMemoryLimit {
		p.Addf("runtime.memory_limit", "must be 0 (no limit) or at least %d bytes (64 MiB), got %d", int64(minMemoryLimit), c.Runtime.MemoryLimit)
	}
	p.Merge("http", c.HTTP.Validate())
	p.Merge("kafka", c.Kafka.Validate())
	p.Merge("clickhouse", c.ClickHouse.Validate())
	p.Merge("collector", c.Collector.Validate())
	p.Merge("consistency", c.Consistency.Validate())
	p.Merge("audit", c.Audit.Validate())
	p.Merge("alerts", c.Alerts.Validate(consistency.Kinds))
	p.Merge("replay", c.Replay.Validate())
	p.Merge("tracing", c.Tracing.Validate())
	p.Merge("leader", c.Leader.Validate())
	return p.Err()
}

// loadConfig reads path (none: defaults only) and applies WEFT_*
// environment overrides. Unknown keys are errors naming their path. It
// does not validate: the caller applies its command-line overrides first
// (globalFlags.load), then validates.
func loadConfig(path string) (Config, error) {
	c := DefaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		var root yaml.Node
		if err := yaml.Unmarshal(b, &root); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
		var p config.Problems
		if len(root.Content) > 0 {
			unknownKeys(&p, root.Content[0], reflect.TypeOf(c), "")
		}
		if err := p.Err(); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(reflect.ValueOf(&c).Elem(), "WEFT"); err != nil {
		return Config{}, err
	}
	return c, nil
}

// unknownKeys walks a YAML mapping against a struct type and records every
// key the struct does not have, with its full path.
func unknownKeys(p *config.Problems, n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode && t != reflect.TypeOf(time.Duration(0)):
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			ft, ok := fields[key]
			if !ok {
				p.Addf(join(path, key), "unknown key (line %d)", n.Content[i].Line)
				continue
			}
			unknownKeys(p, n.Content[i+1], ft, join(path, key))
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			unknownKeys(p, item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// yamlFields maps a struct's YAML keys to their types, the keys of its
// inlined structs included.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if inlined(f) {
			maps.Copy(fields, yamlFields(f.Type))
			continue
		}
		if name := yamlName(f); name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
	return fields
}

func yamlName(f reflect.StructField) string { return strings.Split(f.Tag.Get("yaml"), ",")[0] }

// inlined reports a struct field whose keys yaml.v3 reads into the
// enclosing mapping (`yaml:",inline"`).
func inlined(f reflect.StructField) bool {
	return f.Type.Kind() == reflect.Struct && slices.Contains(strings.Split(f.Tag.Get("yaml"), ",")[1:], "inline")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// applyEnv sets every scalar field from WEFT_<PATH> when that variable is
// set, e.g. WEFT_KAFKA_BROKERS=a:9092,b:9092 or WEFT_CLICKHOUSE_PASSWORD.
func applyEnv(v reflect.Value, prefix string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if inlined(t.Field(i)) {
			if err := applyEnv(v.Field(i), prefix); err != nil {
				return err
			}
			continue
		}
		name := yamlName(t.Field(i))
		if name == "" || name == "-" {
			continue
		}
		key := prefix + "_" + strings.ToUpper(name)
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			if err := applyEnv(f, key); err != nil {
				return err
			}
			continue
		}
		raw, ok := os.LookupEnv(key)
		if !ok {
			continue
		}
		if err := setScalar(f, raw); err != nil {
			return fmt.Errorf("environment %s: %w", key, err)
		}
	}
	return nil
}

func setScalar(f reflect.Value, raw string) error {
	switch {
	case f.Type() == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(raw)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(&b))
	case f.CanInt():
		n, err := strconv.ParseInt(raw, 10, f.Type().Bits())
		if err != nil {
			return err
		}
		f.SetInt(n)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		var parts []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				parts = append(parts, s)
			}
		}
		f.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("cannot be set from the environment (set it in the config file)")
	}
	return nil
}
