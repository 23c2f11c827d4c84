package queuehealth

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// at names a record position: a partition and an offset.
type at struct {
	tp
	offset int64
}

// recordReader reads the timestamp of the first record at or after given
// offsets, with a plain consumer that belongs to no group: it assigns the
// partitions itself, so it can never commit for anyone. It reads as a
// read_committed consumer does: records of aborted transactions are not
// waiting for anyone, and transaction markers are not messages. Records
// never change once written, so timestamps are cached: a group stuck at one
// offset costs one read, not one per sample.
type recordReader struct {
	cl    *kgo.Client
	cache map[at]time.Time
}

func newRecordReader(cl *kgo.Client) *recordReader {
	return &recordReader{cl: cl, cache: map[at]time.Time{}}
}

// readerOpts make the shared client a cheap one-record reader: small
// fetches, no long waits (the records asked for exist).
func readerOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.FetchMaxBytes(4 << 20),
		kgo.FetchMaxPartitionBytes(64 << 10),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	}
}

// timestamps returns the timestamp of the first message at or after each
// wanted position (the oldest message not yet consumed, when the position
// is a committed offset), or the zero time when nothing but transaction
// markers and aborted records lie between it and the partition's bound (its
// last stable offset). Positions not read before ctx ends are missing from
// the answer. Each round reads, on every partition still pending, from its
// lowest pending offset; the records of one fetch answer every pending
// offset they pass, so a round per distinct far-apart offset is the worst case.
func (r *recordReader) timestamps(ctx context.Context, want []at, bound map[tp]int64) map[at]time.Time {
	out := make(map[at]time.Time, len(want))
	pending := map[tp][]int64{}
	for _, w := range want {
		if t, ok := r.cache[w]; ok {
			out[w] = t
			continue
		}
		if b, ok := bound[w.tp]; ok && w.offset >= b {
			out[w] = time.Time{} // only an open transaction's records: not consumable yet
			continue
		}
		pending[w.tp] = append(pending[w.tp], w.offset)
	}
	for p, offs := range pending {
		slices.Sort(offs)
		pending[p] = slices.Compact(offs)
	}
	for len(pending) > 0 && ctx.Err() == nil {
		round := map[string]map[int32]kgo.Offset{}
		target := map[tp]int64{}
		for p, offs := range pending {
			if round[p.topic] == nil {
				round[p.topic] = map[int32]kgo.Offset{}
			}
			round[p.topic][p.partition] = kgo.NewOffset().At(offs[0])
			target[p] = offs[0]
		}
		r.cl.AddConsumePartitions(round)
		for len(target) > 0 && ctx.Err() == nil {
			r.cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
				p := tp{rec.Topic, rec.Partition}
				offs := pending[p]
				ts := rec.Timestamp
				if rec.Attrs.IsControl() {
					if b, ok := bound[p]; !ok || rec.Offset+1 < b {
						return // a message may follow the marker
					}
					ts = time.Time{} // markers only, up to the bound
				}
				for len(offs) > 0 && rec.Offset >= offs[0] {
					out[at{p, offs[0]}] = ts
					offs = offs[1:]
				}
				pending[p] = offs
				if t, ok := target[p]; ok && rec.Offset >= t {
					delete(target, p)
				}
			})
		}
		remove := map[string][]int32{}
		for t, ps := range round {
			for p := range ps {
				remove[t] = append(remove[t], p)
			}
		}
		r.cl.RemoveConsumePartitions(remove)
		for p, offs := range pending {
			if len(offs) == 0 {
				delete(pending, p)
			}
		}
	}
	// Keep only what this sample asked for: positions consumed since are
	// never asked again. "Nothing waiting" is not kept: a message may come.
	r.cache = make(map[at]time.Time, len(out))
	for k, v := range out {
		if !v.IsZero() {
			r.cache[k] = v
		}
	}
	return out
}
