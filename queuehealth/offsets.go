package queuehealth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// tp names a partition.
type tp struct {
	topic     string
	partition int32
}

// offsets is what the cluster said about the monitored topics and groups at
// one instant. Only admin reads (Metadata, ListOffsets, ListGroups,
// DescribeGroups, OffsetFetch) produce it.
type offsets struct {
	at     time.Time
	dlq    map[string]bool // monitored topic → is a dead-letter topic
	start  map[tp]int64    // log start offset
	end    map[tp]int64    // high watermark
	stable map[tp]int64    // last stable offset: read_committed consumers see records below it
	groups map[string]*groupOffsets
}

type groupOffsets struct {
	state     string
	members   int32           // -1: not described
	committed map[tp]int64    // monitored partitions the group committed to
	topics    map[string]bool // monitored topics it committed to or is assigned
}

// readOffsets lists the monitored topics' start and end offsets and every
// selected group's committed offsets and assignments. A group that cannot be
// described or fetched is skipped and reported in the returned partial error;
// a failure to list topics or offsets fails the sample.
func (m *Monitor) readOffsets(ctx context.Context) (*offsets, error) {
	adm := m.admin
	o := &offsets{at: time.Now(), dlq: map[string]bool{}, start: map[tp]int64{}, end: map[tp]int64{}, stable: map[tp]int64{}, groups: map[string]*groupOffsets{}}
	details, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var topics []string
	for _, name := range details.Names() {
		isDLQ := matches(m.dlqRe, name)
		if isDLQ || matches(m.includeRe, name) && !matches(m.excludeRe, name) {
			o.dlq[name] = isDLQ
			topics = append(topics, name)
		}
	}
	var partial []error
	if len(topics) > 0 {
		for _, l := range []struct {
			list func(context.Context, ...string) (kadm.ListedOffsets, error)
			dst  map[tp]int64
		}{{adm.ListStartOffsets, o.start}, {adm.ListEndOffsets, o.end}, {adm.ListCommittedOffsets, o.stable}} {
			listed, err := l.list(ctx, topics...)
			if err != nil && !isShardErr(err) {
				return nil, fmt.Errorf("list offsets: %w", err)
			}
			if err != nil {
				partial = append(partial, fmt.Errorf("list offsets: %w", err))
			}
			listed.Each(func(lo kadm.ListedOffset) {
				if lo.Err == nil && lo.Partition >= 0 {
					l.dst[tp{lo.Topic, lo.Partition}] = lo.Offset
				}
			})
		}
	}
	o.at = time.Now()
	if err := m.readGroups(ctx, o); err != nil {
		partial = append(partial, err)
	}
	return o, errors.Join(partial...)
}

// readGroups fills o.groups: classic groups are described with
// DescribeGroups, KIP-848 groups with ConsumerGroupDescribe; both have their
// commits read with OffsetFetch.
func (m *Monitor) readGroups(ctx context.Context, o *offsets) error {
	adm := m.admin
	var partial []error
	listed, err := adm.ListGroups(ctx)
	if err != nil && !isShardErr(err) {
		return fmt.Errorf("list groups: %w", err)
	} else if err != nil {
		partial = append(partial, fmt.Errorf("list groups: %w", err))
	}
	// A broker without group types (before Kafka 3.8) answers every group
	// to both lists: those are then all described as classic groups.
	classicList, _ := adm.ListGroupsByType(ctx, []string{"classic"})
	consumerList, _ := adm.ListGroupsByType(ctx, []string{"consumer"})
	var classic, consumer, names []string
	for _, g := range listed.Sorted() {
		if !matches(m.groupsInRe, g.Group) || matches(m.groupsExRe, g.Group) {
			continue
		}
		if g.ProtocolType == "share" {
			continue // share groups (KIP-932) acknowledge records; they commit no offsets
		}
		_, isConsumer := consumerList[g.Group]
		if _, isClassic := classicList[g.Group]; isConsumer && !isClassic {
			consumer = append(consumer, g.Group)
		} else {
			classic = append(classic, g.Group)
		}
		names = append(names, g.Group)
		o.groups[g.Group] = &groupOffsets{state: g.State, members: -1, committed: map[tp]int64{}, topics: map[string]bool{}}
	}
	if len(names) == 0 {
		return errors.Join(partial...)
	}
	assign := func(group, state string, members int, ts kadm.TopicsSet) {
		g := o.groups[group]
		if g == nil {
			return
		}
		if state != "" {
			g.state = state
		}
		g.members = int32(members)
		for topic := range ts {
			if _, ok := o.dlq[topic]; ok {
				g.topics[topic] = true
			}
		}
	}
	if len(classic) > 0 {
		described, err := adm.DescribeGroups(ctx, classic...)
		if err != nil {
			partial = append(partial, fmt.Errorf("describe groups: %w", err))
		}
		for name, d := range described {
			if d.Err == nil {
				assign(name, d.State, len(d.Members), kadm.DescribedGroups{name: d}.AssignedPartitions())
			}
		}
	}
	if len(consumer) > 0 {
		described, err := adm.DescribeConsumerGroups(ctx, consumer...)
		if err != nil {
			partial = append(partial, fmt.Errorf("describe consumer groups: %w", err))
		}
		for name, d := range described {
			if d.Err == nil {
				assign(name, d.State, len(d.Members), d.AssignedPartitions())
			}
		}
	}
	for name, r := range adm.FetchManyOffsets(ctx, names...) {
		g := o.groups[name]
		if g == nil {
			continue
		}
		if r.Err != nil {
			partial = append(partial, fmt.Errorf("fetch offsets of group %s: %w", name, r.Err))
			delete(o.groups, name)
			continue
		}
		r.Fetched.Each(func(c kadm.OffsetResponse) {
			if _, ok := o.dlq[c.Topic]; ok && c.Err == nil && c.At >= 0 {
				g.committed[tp{c.Topic, c.Partition}] = c.At
				g.topics[c.Topic] = true
			}
		})
	}
	for name, g := range o.groups {
		if len(g.topics) == 0 {
			delete(o.groups, name) // reads none of the monitored topics
		}
	}
	return errors.Join(partial...)
}

func isShardErr(err error) bool {
	var se *kadm.ShardErrors
	return errors.As(err, &se) && !se.AllFailed
}
