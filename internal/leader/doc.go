// Package leader elects one weft replica to do the work that must run once
// for the whole cluster — the detector's passes, queue-health samples, the
// scheduled audit verification, webhook notifications, trace export —
// while every replica taps its share of the partitions (docs/replicas.md).
//
// The election uses Kafka's own group membership, as Kafka Connect and
// Schema Registry elect their leader: the replicas join a group of their
// own (leader.group) with the raw group protocol and a protocol type of
// their own ("weft-leader"), no topics; the member the coordinator names
// leader in its JoinGroup answer leads. A leader that cannot reach the
// coordinator stops leading before the coordinator could name another
// (self-fencing), and a replica that stops leaves the group so another
// takes over at once.
//
// Elector is the membership; Gate runs a component only while its
// replica leads.
package leader
