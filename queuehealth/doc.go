// Package queuehealth samples the queues of the tapped Kafka cluster — the
// lag, in messages and in seconds, of every consumer group reading the
// tapped topics, each topic's depth and produce rate, and the dead-letter
// topics' depth and oldest record — into Prometheus metrics and the
// queue_health table (docs/queue-health.md).
package queuehealth
