package demo

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, cfg.Validate())
	assert.GreaterOrEqual(t, cfg.History, MinHistory())
	assert.False(t, cfg.Now.After(time.Now()))
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		paths []string
	}{
		{"valid", func(*Config) {}, nil},
		{"negative orders", func(c *Config) { c.Orders = -1 }, []string{"orders"}},
		{"no now", func(c *Config) { c.Now = time.Time{} }, []string{"now"}},
		{"short history", func(c *Config) { c.History = 2 * time.Hour }, []string{"history"}},
		{"bad prefix", func(c *Config) { c.Topics.Prefix = "shop/" }, []string{"topics.prefix"}},
		{"bad suffix", func(c *Config) { c.Topics.Suffix = " v1" }, []string{"topics.suffix"}},
		{"negative weight", func(c *Config) { c.Encoding.Binary = -1 }, []string{"encoding.binary"}},
		{"no weights", func(c *Config) { c.Encoding = EncodingMix{} }, []string{"encoding"}},
		{"fraction and count", func(c *Config) { c.Faults.Race.Count = 3 }, []string{"faults.race"}},
		{"fraction over 1", func(c *Config) { c.Faults.Lost.Fraction = 1.5 }, []string{"faults.lost.fraction", "faults"}},
		{"fractions sum over 1", func(c *Config) { c.Faults.Duplicate.Fraction = 0.9 }, []string{"faults"}},
		{"counts over orders", func(c *Config) {
			c.Orders = 10
			c.Faults = FaultMix{Stuck: FaultShare{Count: 8}, Lost: FaultShare{Count: 3}}
		}, []string{"faults"}},
		{"negative count", func(c *Config) { c.Faults.Stuck = FaultShare{Count: -2} }, []string{"faults.stuck.count"}},
		{"live delays", func(c *Config) { c.Live.StepDelayMin = 0; c.Live.StepDelayMax = -1 }, []string{"live.step_delay_min", "live.step_delay_max"}},
		{"live off ignores delays", func(c *Config) { c.Live = LiveConfig{} }, nil},
		{"negative rate", func(c *Config) { c.Live.Rate = -1 }, []string{"live.rate"}},
		{"unknown lagging service", func(c *Config) { c.Consumers.Lagging = "billing" }, []string{"consumers.lagging"}},
		{"unknown stopping service", func(c *Config) { c.Consumers.Stopping = "inventory-svc" }, []string{"consumers.stopping"}},
		{"one service lags and stops", func(c *Config) { c.Consumers.Stopping = c.Consumers.Lagging }, []string{"consumers"}},
		{"no lagging rate", func(c *Config) { c.Consumers.LaggingRate = 0 }, []string{"consumers.lagging_rate"}},
		{"lagging rate keeps up with live", func(c *Config) { c.Consumers.LaggingRate = c.Live.Rate }, []string{"consumers.lagging_rate"}},
		{"any lagging rate without live", func(c *Config) { c.Live.Rate, c.Consumers.LaggingRate = 0, 50 }, nil},
		{"no stop_after", func(c *Config) { c.Consumers.StopAfter = 0 }, []string{"consumers.stop_after"}},
		{"bad group prefix", func(c *Config) { c.Consumers.GroupPrefix = "shop:" }, []string{"consumers.group_prefix"}},
		{"nobody lags or stops", func(c *Config) {
			c.Consumers = ConsumersConfig{Enabled: true, GroupPrefix: "shop."}
		}, nil},
		{"consumers off ignore the rest", func(c *Config) {
			c.Consumers = ConsumersConfig{Lagging: "billing", LaggingRate: -1, StopAfter: -1}
		}, nil},
		{"uneven traffic", func(c *Config) {
			c.Encoding.InBand, c.Encoding.Sparse = true, []string{ServiceOrders, ServicePickup}
			c.PersonalData = PersonalData{KeyedByEmail: 0.5, Payloads: true, Headers: true, Undecodable: 4}
		}, nil},
		{"sparse service unknown or twice", func(c *Config) {
			c.Encoding.Sparse = []string{"billing", ServiceOrders, ServiceOrders}
		}, []string{"encoding.sparse[0]", "encoding.sparse[2]"}},
		{"keyed by e-mail over 1", func(c *Config) { c.PersonalData.KeyedByEmail = 2 }, []string{"personal_data.keyed_by_email"}},
		{"negative undecodable", func(c *Config) { c.PersonalData.Undecodable = -1 }, []string{"personal_data.undecodable"}},
		{"undecodable without orders", func(c *Config) { c.Orders, c.PersonalData.Undecodable = 0, 3 }, []string{"personal_data.undecodable"}},
		{"every problem at once", func(c *Config) {
			c.Orders, c.Now, c.Encoding.JSON, c.Live.MaxOrders = -5, time.Time{}, -1, -1
		}, []string{"orders", "now", "encoding.json", "live.max_orders"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			if tc.paths == nil {
				assert.NoError(t, err)
				return
			}
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "got %v", err)
			var paths []string
			for _, p := range ce.Problems {
				paths = append(paths, p.Path)
				assert.Contains(t, err.Error(), p.Path+": "+p.Message)
			}
			assert.ElementsMatch(t, tc.paths, paths, err.Error())
		})
	}
}

func TestFaultMixCounts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mix    FaultMix
		orders int
		want   map[Kind]int
	}{
		{"default", DefaultConfig().Faults, 200, withZeros(map[Kind]int{
			KindStuck: 22, KindLost: 6, KindDuplicate: 8, KindOutOfOrder: 6, KindRace: 4, KindPaymentFailed: 6,
			KindOrphan: 4, KindCausalityViolation: 4, KindConflictingDuplicate: 4, KindMissingCompensation: 4, KindDivergence: 4})},
		{"counts win", FaultMix{Stuck: FaultShare{Count: 11}, Race: FaultShare{Count: 2}}, 50, withZeros(map[Kind]int{
			KindStuck: 11, KindRace: 2})},
		{"rounding never overshoots", FaultMix{Stuck: FaultShare{Fraction: 0.5}, Lost: FaultShare{Fraction: 0.5},
			Divergence: FaultShare{Fraction: 0.5}}, 3, withZeros(map[Kind]int{KindStuck: 2, KindLost: 1})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.mix.Counts(tc.orders))
		})
	}
}

func TestFaultMixSetAndParseKind(t *testing.T) {
	var m FaultMix
	for i, k := range Kinds() {
		got, ok := ParseKind(strings.ToUpper(strings.ReplaceAll(string(k), "_", "-")))
		require.True(t, ok, k)
		assert.Equal(t, k, got)
		require.True(t, m.Set(k, FaultShare{Count: i + 1}))
	}
	for i, k := range Kinds() {
		assert.Equal(t, FaultShare{Count: i + 1}, m.Share(k), k)
	}
	_, ok := ParseKind("gap")
	assert.False(t, ok)
	assert.False(t, m.Set("gap", FaultShare{Count: 1}))
	assert.Equal(t, FaultShare{}, m.Share("gap"))
}

func TestTopicNames(t *testing.T) {
	names := TopicNames{Prefix: "acme.", Suffix: "-v2"}
	assert.Equal(t, []string{"acme.orders-v2", "acme.inventory-v2", "acme.fulfillment-v2", "acme.pickup-v2",
		"acme.payments-v2", "acme.notifications-v2", "acme.payments.dlq-v2"}, names.All())
	assert.Equal(t, "payments.dlq", TopicNames{}.Name(TopicPaymentsDLQ))
}
