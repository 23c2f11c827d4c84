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
// reported it. A partition not seen in a poll for backlogTTL (revoked, or
// idle since it was caught up) no longer counts.
//
// It costs nothing to know: every fetch response carries the offsets.
// The detector reads it to leave the machine to the tap while a backlog
// is being stored (consistency.backlog_interval).
type backlog struct {
	mu    sync.Mutex
	parts map[topicPartition]backlogEntry
}

type topicPartition struct {
	topic     string
	partition int32
}

type backlogEntry struct {
	behind int64
	seen   time.Time
}

// backlogTTL is how long a partition's last reading counts.
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

// records is the backlog at now, in records, over the partitions read
// within backlogTTL; it forgets the others.
func (b *backlog) records(now time.Time) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	for tp, e := range b.parts {
		if now.Sub(e.seen) > backlogTTL {
			delete(b.parts, tp)
			continue
		}
		n += e.behind
	}
	return n
}
