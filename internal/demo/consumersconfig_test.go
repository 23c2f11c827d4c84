package demo

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestUpstreamTopics(t *testing.T) {
	want := map[string][]string{
		ServiceOrders:        {TopicInventory, TopicPayments, TopicNotifications}, // a customer cancels once notified (cancel_race)
		ServiceInventory:     {TopicOrders, TopicPickup, TopicPayments},
		ServicePayments:      {TopicInventory, TopicPickup},
		ServiceFulfillment:   {TopicPayments},
		ServiceNotifications: {TopicFulfillment},
		ServicePickup:        {TopicFulfillment, TopicNotifications},
	}
	for _, svc := range Services() {
		assert.Equal(t, want[svc], UpstreamTopics(svc), svc)
	}
	assert.Nil(t, UpstreamTopics("billing"))
}

func TestConsumerGroups(t *testing.T) {
	cfg := testConfig()
	cfg.Topics = TopicNames{Prefix: "acme."}
	cfg.Consumers.GroupPrefix = "acme."
	groups := cfg.ConsumerGroups()
	assert.Equal(t, []ConsumerGroup{
		{Service: ServiceOrders, Group: "acme.orders-svc", Topics: []string{"acme.inventory", "acme.payments", "acme.notifications"}, Behavior: BehaviorKeepsUp},
		{Service: ServiceInventory, Group: "acme.inventory-svc", Topics: []string{"acme.orders", "acme.pickup", "acme.payments"}, Behavior: BehaviorKeepsUp},
		{Service: ServicePayments, Group: "acme.payments-svc", Topics: []string{"acme.inventory", "acme.pickup"}, Behavior: BehaviorKeepsUp},
		{Service: ServiceFulfillment, Group: "acme.fulfillment-svc", Topics: []string{"acme.payments"}, Behavior: BehaviorLagging, Rate: 0.5},
		{Service: ServiceNotifications, Group: "acme.notifications-svc", Topics: []string{"acme.fulfillment"}, Behavior: BehaviorStopped, StopAfter: time.Minute},
		{Service: ServicePickup, Group: "acme.pickup-svc", Topics: []string{"acme.fulfillment", "acme.notifications"}, Behavior: BehaviorKeepsUp},
	}, groups)

	m := &Manifest{Consumers: groups}
	assert.Equal(t, []ConsumerGroup{groups[3]}, m.GroupsWith(BehaviorLagging))
	assert.Equal(t, []ConsumerGroup{groups[4]}, m.GroupsWith(BehaviorStopped))
	assert.Len(t, m.GroupsWith(BehaviorKeepsUp), 4)

	live := newManifest(1, "live")
	m.Merge(live)
	assert.Equal(t, groups, m.Consumers, "a merged live manifest keeps the consumers")

	cfg.Consumers.Enabled = false
	assert.Nil(t, cfg.ConsumerGroups())
}
