package collector

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// backlog is how far behind the end of the log the tap reads: for each
// partition a recent poll returned records of, the records between the
// last one polled and the partition's last stable offset (its high
// watermark when the broker sends none), as the fetch that carried them
// reported it. A partition whose reading is backlogTTL older than the
// newest one (moved to another replica without a revoke reaching us) no
// longer counts; revoked and lost partitions are forgotten at once. While
// the tap does not poll (ClickHouse down, both batches waiting) nothing
// ages, so the backlog it reports grows with the log, not back to zero.
//
// It costs nothing to know: every fetch response carries the offsets.
// The detector reads it to leave the machine to the tap while a backlog
// is being stored (consistency.backlog_interval).
type backlog struct {
	mu    sync.Mutex
	parts map[topicPartition]backlogEntry
}

type backlogEntry struct {
	behind int64
	seen   time.Time
}

// backlogTTL is how much older than the newest reading a partition's last
// reading may be and still count.
const backlogTTL = 30 * time.Second

// note records the readings of one poll's fetches, at now.
func (b *backlog) note(fetches kgo.Fetches, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.parts == nil {
		b.parts = map[topicPartition]backlogEntry{}
	}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		end := p.LastStableOffset
		if end <= 0 {
			end = p.HighWatermark
		}
		next := p.Records[len(p.Records)-1].Offset + 1
		b.parts[topicPartition{p.Topic, p.Partition}] = backlogEntry{behind: max(end-next, 0), seen: now}
	})
}

// records is the backlog in records, over the partitions read within
// backlogTTL of the newest reading; it forgets the others.
func (b *backlog) records() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var newest time.Time
	for _, e := range b.parts {
		if e.seen.After(newest) {
			newest = e.seen
		}
	}
	var n int64
	for tp, e := range b.parts {
		if newest.Sub(e.seen) > backlogTTL {
			delete(b.parts, tp)
			continue
		}
		n += e.behind
	}
	return n
}

// forget drops the readings of partitions the tap no longer owns.
func (b *backlog) forget(gone map[string][]int32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for topic, ps := range gone {
		for _, p := range ps {
			delete(b.parts, topicPartition{topic, p})
		}
	}
}
