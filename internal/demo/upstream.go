package demo

import (
	"slices"
	"sync"
)

// Services returns the six producing services, in workflow order.
func Services() []string {
	return []string{ServiceOrders, ServiceInventory, ServicePayments, ServiceFulfillment,
		ServiceNotifications, ServicePickup}
}

// UpstreamTopics returns the base topics a service consumes: those whose
// events trigger one of its own events (the event's cause, or another parent
// the service saw, as when a race resolves), in every workflow variant,
// excluding the service's own topic, in the order of TopicNames.All. It is
// derived from the workflow itself (buildChain), so it follows any change
// to it:
//
//	service        consumes
//	orders         inventory, payments, notifications
//	inventory      orders, pickup, payments
//	payments       inventory, pickup
//	fulfillment    payments
//	notifications  fulfillment
//	pickup         fulfillment, notifications
//
// It returns nil for an unknown service.
func UpstreamTopics(service string) []string {
	return slices.Clone(upstream()[service])
}

// upstream is UpstreamTopics for every service, computed once.
var upstream = sync.OnceValue(func() map[string][]string {
	t := historyTiming()
	t.worst = true // every variant's shape, no randomness needed
	seen := map[string]map[string]bool{}
	for _, async := range []bool{false, true} {
		for retries := 0; retries <= maxRetries; retries++ {
			if !async && retries > 0 {
				continue
			}
			for out := range numOutcomes {
				evs := buildChain(spec{async, retries, out}, t, nil)
				for _, e := range evs {
					parents := e.also
					if e.cause >= 0 {
						parents = append([]int{e.cause}, e.also...)
					}
					svc := serviceOf(e.typ)
					for _, p := range parents {
						topic := topicOf(evs[p].typ)
						if topic == topicOf(e.typ) {
							continue // the service's own events: it does not read them back
						}
						if seen[svc] == nil {
							seen[svc] = map[string]bool{}
						}
						seen[svc][topic] = true
					}
				}
			}
		}
	}
	order := map[string]int{}
	for i, topic := range (TopicNames{}).All() {
		order[topic] = i
	}
	out := make(map[string][]string, len(seen))
	for svc, topics := range seen {
		for topic := range topics {
			out[svc] = append(out[svc], topic)
		}
		slices.SortFunc(out[svc], func(a, b string) int { return order[a] - order[b] })
	}
	return out
})
