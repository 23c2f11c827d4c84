package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/demo"
)

// CreateTopic creates topic with the given partitions (replication 1) and
// topic configs on the test broker, failing the test if it cannot.
func CreateTopic(t testing.TB, brokers []string, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// DemoHistory produces a demo history (cfg.Topics and cfg.Now as given)
// into the test broker and returns its manifest.
func DemoHistory(t testing.TB, brokers []string, cfg demo.Config) *demo.Manifest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer prod.Close()
	gen, err := demo.New(cfg, prod, zerolog.Nop())
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	if err := gen.EnsureTopics(ctx, kadm.NewClient(prod), 3); err != nil {
		t.Fatalf("demo topics: %v", err)
	}
	m, err := gen.RunHistory(ctx)
	if err != nil {
		t.Fatalf("demo history: %v", err)
	}
	return m
}
