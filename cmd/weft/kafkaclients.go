package main

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newProducer is used only by the demo and dev commands, which write demo
// traffic to their own embedded or test cluster; `weft run` never produces.
func newProducer(opts []kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

func newAdmin(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }
