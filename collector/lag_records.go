package collector

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
// partitions itself, so it can never commit for anyone. Records never change
// once written, so timestamps are cached: a group stuck at one offset costs
// one read, not one per sample.
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
	}
}

// timestamps returns the timestamp of the first record at or after each
// wanted position (the oldest record not yet consumed, when the position is
// a committed offset). Positions not read before ctx ends are missing from
// the answer. Each round reads, on every partition still pending, from its
// lowest pending offset; the records of one fetch answer every pending
// offset they pass, so a round per distinct far-apart offset is the worst case.
func (r *recordReader) timestamps(ctx context.Context, want []at) map[at]time.Time {
	out := make(map[at]time.Time, len(want))
	pending := map[tp][]int64{}
	for _, w := range want {
		if t, ok := r.cache[w]; ok {
			out[w] = t
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
				for len(offs) > 0 && rec.Offset >= offs[0] {
					out[at{p, offs[0]}] = rec.Timestamp
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
	// never asked again.
	r.cache = make(map[at]time.Time, len(out))
	for k, v := range out {
		r.cache[k] = v
	}
	return out
}
