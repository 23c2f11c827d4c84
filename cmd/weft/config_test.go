package main

import (
	"os"
	"reflect"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/queuehealth"
)

// loadValid is what `weft` does with a config file and no flags: load it,
// then validate.
func loadValid(path string) (Config, error) {
	c, err := loadConfig(path)
	if err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

const examplePath = "../../weft.example.yaml"

// The reference file documents every key: it must load and validate, and
// every field of Config must appear in it.
func TestExampleConfigLoads(t *testing.T) {
	c, err := loadValid(examplePath)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:9092"}, c.Kafka.Brokers)
	assert.Len(t, c.Collector.Mapping, 1)
	assert.Len(t, c.Consistency.AllWorkflows(), 3)
	assert.Equal(t, 24*time.Hour, c.Consistency.Workflows[0].Steps[0].SLA)

	b, err := os.ReadFile(examplePath)
	require.NoError(t, err)
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal(b, &root))
	set := map[string]bool{}
	exampleKeys(&root, "", set)
	var keys []string
	configKeys(reflect.TypeOf(Config{}), "", &keys)
	require.Contains(t, keys, "consistency.workflows[].invariants[].if_any", "the walk reaches lists of blocks")
	var missing []string
	for _, k := range keys {
		if !set[k] {
			missing = append(missing, k)
		}
	}
	slices.Sort(missing)
	assert.Empty(t, missing, "keys of Config that %s does not set", examplePath)
}

// configKeys appends the path of every key of the block t ("collector.batch",
// "collector.batch.max_records"): nested blocks (structs with yaml keys, or
// pointers to them) are walked, and so are the items of lists of blocks,
// as path[]; anything else is a leaf: scalars, durations, lists of scalars,
// maps.
func configKeys(t reflect.Type, path string, out *[]string) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			path += "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for name, ft := range yamlFields(t) {
		p := join(path, name)
		*out = append(*out, p)
		configKeys(ft, p, out)
	}
}

// exampleKeys records the path of every key set in the YAML tree n, in the
// form configKeys gives: the items of a list as path[].
func exampleKeys(n *yaml.Node, path string, set map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			exampleKeys(c, path, set)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			set[p] = true
			exampleKeys(n.Content[i+1], p, set)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			exampleKeys(c, path+"[]", set)
		}
	case yaml.AliasNode:
		exampleKeys(n.Alias, path, set)
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("WEFT_KAFKA_BROKERS", "a:1, b:2")
	t.Setenv("WEFT_CLICKHOUSE_PASSWORD", "s3cret")
	t.Setenv("WEFT_COLLECTOR_BATCH_FLUSH_INTERVAL", "2s")
	t.Setenv("WEFT_COLLECTOR_REDACTION_CARDS", "false")
	c, err := loadValid("")
	require.NoError(t, err)
	assert.Equal(t, []string{"a:1", "b:2"}, c.Kafka.Brokers)
	assert.Equal(t, "s3cret", c.ClickHouse.Password)
	assert.Equal(t, 2*time.Second, c.Collector.Batch.FlushInterval)
	require.NotNil(t, c.Collector.Redaction.Cards)
	assert.False(t, *c.Collector.Redaction.Cards)

	t.Setenv("WEFT_COLLECTOR_BATCH_MAX_RECORDS", "many")
	_, err = loadValid("")
	assert.ErrorContains(t, err, "WEFT_COLLECTOR_BATCH_MAX_RECORDS")
}

func TestRuntimeMemoryLimitConfig(t *testing.T) {
	c, err := loadValid("")
	require.NoError(t, err)
	assert.EqualValues(t, 224<<20, c.Runtime.MemoryLimit, "default")

	c, err = loadValid(examplePath)
	require.NoError(t, err)
	assert.EqualValues(t, 224<<20, c.Runtime.MemoryLimit, "the example documents the default")
	assert.Equal(t, consistency.Default().Settle, c.Consistency.Settle, "the example documents the default")

	for _, tc := range []struct {
		env  string
		want string // "" means valid
	}{
		{"0", ""},
		{"1073741824", ""},
		{"67108864", ""},
		{"1000000", "runtime.memory_limit"},
		{"-1", "runtime.memory_limit"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv("WEFT_RUNTIME_MEMORY_LIMIT", tc.env)
			_, err := loadValid("")
			if tc.want == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, tc.want)
			}
		})
	}
}

func TestApplyMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })

	t.Setenv("GOMEMLIMIT", "")
	assert.EqualValues(t, 300<<20, applyMemoryLimit(RuntimeConfig{MemoryLimit: 300 << 20}, zerolog.Nop()))
	assert.EqualValues(t, 300<<20, debug.SetMemoryLimit(-1), "the key sets the limit")

	assert.EqualValues(t, -1, applyMemoryLimit(RuntimeConfig{MemoryLimit: 0}, zerolog.Nop()))
	assert.EqualValues(t, 300<<20, debug.SetMemoryLimit(-1), "0 leaves the limit alone")

	// GOMEMLIMIT was read by the runtime at start; the key must not override it.
	t.Setenv("GOMEMLIMIT", "400MiB")
	debug.SetMemoryLimit(400 << 20)
	assert.EqualValues(t, 400<<20, applyMemoryLimit(RuntimeConfig{MemoryLimit: 128 << 20}, zerolog.Nop()))
	assert.EqualValues(t, 400<<20, debug.SetMemoryLimit(-1), "GOMEMLIMIT wins")
}

// The collector block holds the tap's keys and, under lag, queue health's:
// both are read from the file and from WEFT_COLLECTOR_*, an unknown key in
// either is an error, and every problem names its full path.
func TestCollectorLagConfig(t *testing.T) {
	path := writeFile(t, "collector:\n  group: g\n  lag:\n    interval: 30s\n    groups:\n      include: ['^app']\n")
	c, err := loadValid(path)
	require.NoError(t, err)
	assert.Equal(t, "g", c.Collector.Group)
	assert.Equal(t, 30*time.Second, c.Collector.Lag.Interval)
	assert.Equal(t, []string{"^app"}, c.Collector.Lag.Groups.Include)
	assert.Equal(t, queuehealth.DefaultDLQPattern, c.Collector.Lag.DLQPattern, "a default kept")
	assert.Equal(t, collector.Default().Topics, c.Collector.Topics, "a default kept")

	t.Setenv("WEFT_COLLECTOR_LAG_INTERVAL", "45s")
	t.Setenv("WEFT_COLLECTOR_LAG_ENABLED", "false")
	t.Setenv("WEFT_COLLECTOR_GROUP", "h")
	c, err = loadValid(path)
	require.NoError(t, err)
	assert.Equal(t, 45*time.Second, c.Collector.Lag.Interval)
	assert.False(t, c.Collector.Lag.Enabled)
	assert.Equal(t, "h", c.Collector.Group)

	_, err = loadValid(writeFile(t, "collector:\n  bogus: 1\n  lag:\n    intervall: 1s\n"))
	assert.ErrorContains(t, err, "collector.bogus: unknown key")
	assert.ErrorContains(t, err, "collector.lag.intervall: unknown key")

	t.Setenv("WEFT_COLLECTOR_LAG_INTERVAL", "100ms")
	t.Setenv("WEFT_COLLECTOR_BATCH_MAX_RECORDS", "0")
	_, err = loadValid(path)
	assert.ErrorContains(t, err, "collector.lag.interval: must be at least 1s")
	assert.ErrorContains(t, err, "collector.batch.max_records: must be positive")
}

// TestAuditVerifyConfig: the schedule's defaults, and a window shorter
// than the schedule refused with its key.
func TestAuditVerifyConfig(t *testing.T) {
	c, err := loadValid(writeFile(t, "audit:\n  checkpoint:\n    every: 30s\n"))
	require.NoError(t, err)
	assert.Equal(t, time.Hour, c.Audit.Verify.Every)
	assert.Equal(t, 2*time.Hour, c.Audit.Verify.Window)

	c, err = loadValid(writeFile(t, "audit:\n  verify:\n    every: 0s\n"))
	require.NoError(t, err, "0 turns it off")
	assert.Zero(t, c.Audit.Verify.Every)

	_, err = loadValid(writeFile(t, "audit:\n  verify:\n    every: 2h\n    window: 1h\n"))
	assert.ErrorContains(t, err, "audit.verify.window: 1h0m0s is shorter than verify.every (2h0m0s)")
}

// TestLeaderConfig: the election's defaults (on, the group derived from
// the tap's, 6 s), and a bad session timeout refused with its key.
func TestLeaderConfig(t *testing.T) {
	c, err := loadValid(writeFile(t, "collector:\n  group: g\n"))
	require.NoError(t, err)
	assert.True(t, c.Leader.Enabled)
	assert.Equal(t, 6*time.Second, c.Leader.SessionTimeout)
	assert.Equal(t, "g.leader", c.Leader.WithGroup(c.Collector.Group).Group)

	c, err = loadValid(writeFile(t, "leader:\n  enabled: false\n  group: elect\n  session_timeout: 10s\n"))
	require.NoError(t, err)
	assert.False(t, c.Leader.Enabled)
	assert.Equal(t, "elect", c.Leader.WithGroup("g").Group)

	_, err = loadValid(writeFile(t, "leader:\n  session_timeout: 100ms\n"))
	assert.ErrorContains(t, err, "leader.session_timeout: must be between 1s and 30m")
}
