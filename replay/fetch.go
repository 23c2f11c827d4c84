package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Position names one Kafka record.
type Position struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

func (p Position) String() string { return fmt.Sprintf("%s/%d@%d", p.Topic, p.Partition, p.Offset) }

type topicPartition struct {
	topic string
	part  int32
}

// reader reads records back from Kafka by position: the original bytes,
// never weft's stored (masked) copy. It reads read_committed, as the tap
// does, so a record of an aborted transaction is never replayed.
type reader struct {
	opts  []kgo.Opt // the connection's, without consuming
	adm   *kadm.Client
	parts map[topicPartition]*partReader
	// wait bounds how long one partition may return nothing before the
	// records still wanted from it are reported gone.
	wait time.Duration
}

// partReader is one partition's consuming client and what it fetched
// ahead of what was asked.
type partReader struct {
	cl   *kgo.Client
	buf  []*kgo.Record
	pos  int64 // the offset the next fetch starts at
	last int64 // the offset asked last: a lower one seeks back
}

// jumpGap is how far ahead of the partition's position a wanted record
// may be before the reader seeks to it instead of reading up to it.
const jumpGap = 4096

func newReader(opts []kgo.Opt, adm *kadm.Client) *reader {
	return &reader{opts: opts, adm: adm, parts: map[topicPartition]*partReader{}, wait: 15 * time.Second}
}

func (r *reader) close() {
	for _, p := range r.parts {
		p.cl.Close()
	}
	r.parts = map[topicPartition]*partReader{}
}

// Got is one record read back, or why it could not be.
type Got struct {
	Pos    Position
	Record *kgo.Record // nil when gone
	Gone   string      // why the record is not in Kafka
}

// read reads the records at ps and returns them in the order of ps, a
// record Kafka no longer holds (retention, compaction, a partition
// recreated) with the reason.
func (r *reader) read(ctx context.Context, ps []Position) ([]Got, error) {
	out := make([]Got, len(ps))
	byTP := map[topicPartition][]int{} // → indexes into ps
	var topics []string
	for i, p := range ps {
		out[i].Pos = p
		tp := topicPartition{p.Topic, p.Partition}
		if _, ok := byTP[tp]; !ok && !slices.Contains(topics, p.Topic) {
			topics = append(topics, p.Topic)
		}
		byTP[tp] = append(byTP[tp], i)
	}
	if len(ps) == 0 {
		return out, nil
	}
	starts, err := r.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka: list start offsets of %v: %w", topics, err)
	}
	ends, err := r.adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka: list end offsets of %v: %w", topics, err)
	}
	for tp, idx := range byTP {
		start, sok := starts.Lookup(tp.topic, tp.part)
		end, eok := ends.Lookup(tp.topic, tp.part)
		if !sok || !eok || start.Err != nil || end.Err != nil {
			for _, i := range idx {
				out[i].Gone = fmt.Sprintf("partition %s/%d does not exist in Kafka", tp.topic, tp.part)
			}
			continue
		}
		slices.SortFunc(idx, func(a, b int) int { return int(ps[a].Offset - ps[b].Offset) })
		for _, i := range idx {
			w := ps[i].Offset
			switch {
			case w < start.Offset:
				out[i].Gone = fmt.Sprintf("gone from Kafka: retention removed it (the partition now starts at offset %d)", start.Offset)
			case w >= end.Offset:
				out[i].Gone = fmt.Sprintf("not in Kafka: the partition ends at offset %d (was the topic recreated?)", end.Offset)
			default:
				rec, gone, err := r.at(ctx, tp, w)
				if err != nil {
					return nil, err
				}
				out[i].Record, out[i].Gone = rec, gone
			}
		}
	}
	return out, nil
}

// at returns the record at offset w of tp, or why Kafka returned another.
func (r *reader) at(ctx context.Context, tp topicPartition, w int64) (*kgo.Record, string, error) {
	p := r.parts[tp]
	if p == nil {
		cl, err := kgo.NewClient(append(slices.Clone(r.opts),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{tp.topic: {tp.part: kgo.NewOffset().At(w)}}),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
		if err != nil {
			return nil, "", fmt.Errorf("kafka client: %w", err)
		}
		p = &partReader{cl: cl, pos: w, last: -1}
		r.parts[tp] = p
	}
	// Since the last seek, buf holds every record read at or after the
	// offset asked last: a higher one is found there or is gone; a lower
	// one, or one far ahead, needs a seek.
	if w <= p.last || w-p.pos > jumpGap {
		p.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{tp.topic: {tp.part: {Epoch: -1, Offset: w}}})
		p.buf, p.pos = nil, w
	}
	p.last = w
	for len(p.buf) > 0 && p.buf[0].Offset < w {
		p.buf = p.buf[1:]
	}
	for len(p.buf) == 0 {
		pctx, cancel := context.WithTimeout(ctx, r.wait)
		fs := p.cl.PollRecords(pctx, 1000)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil {
			return nil, "", fmt.Errorf("kafka: read %s/%d@%d back: %w", tp.topic, tp.part, w, ferr)
		}
		recs := fs.Records()
		if len(recs) == 0 {
			return nil, fmt.Sprintf("Kafka returned nothing at or after this offset within %s (aborted, compacted or a transaction marker)", r.wait), nil
		}
		for _, rec := range recs {
			if rec.Offset >= w {
				p.buf = append(p.buf, rec)
			}
			p.pos = rec.Offset + 1
		}
	}
	if p.buf[0].Offset != w {
		return nil, fmt.Sprintf("gone from Kafka: the partition continues at offset %d (compacted, or in an aborted transaction)", p.buf[0].Offset), nil
	}
	rec := p.buf[0]
	p.buf = p.buf[1:]
	if rec.Attrs.IsControl() {
		return nil, "not a record: a transaction marker", nil
	}
	return rec, "", nil
}
