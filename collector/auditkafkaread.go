package collector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partitionReader reads a range of one partition's records as a
// read_committed consumer sees them (no aborted record, no transaction
// marker), read-only: Fetch requests to the partition's leader, no group,
// no commit. Each response is decoded by franz-go's own
// kgo.ProcessFetchPartition, which filters aborted transactions exactly
// as the tap's consumer does.
//
// It sends its own Fetch requests rather than consuming with
// kgo.ConsumePartitions because it must know where it is: a consumer does
// not say how far it has read, and a partition whose last offsets before
// the range's end hold nothing it returns (an aborted transaction, records
// compaction removed) would leave it waiting for records that never come.
// Here every response either moves the position on (records, markers and
// aborted or compacted batches all do) or says there is nothing more below
// the last stable offset.
type partitionReader struct {
	cl        *kgo.Client
	adm       *kadm.Client
	topic     string
	partition int32
	id        [16]byte
	leader    int32
	pos       int64 // the next offset to fetch
	end       int64 // the range's end, exclusive
	// logStart is Kafka's log start offset as last seen: it moves on while
	// reading when retention deletes records.
	logStart int64
	buf      []*kgo.Record
	done     bool
	dec      kgo.Decompressor
}

// fetchMaxBytes bounds one Fetch response (a larger first batch is still
// returned whole, as Kafka does for every consumer).
const fetchMaxBytes = 4 << 20

// leaderRetries bounds how often a fetch follows a leader that moved.
const leaderRetries = 5

// next returns the next record of the range, or false at its end.
func (r *partitionReader) next(ctx context.Context) (*kgo.Record, bool, error) {
	for len(r.buf) == 0 {
		if r.done || r.pos >= r.end {
			return nil, false, nil
		}
		if err := r.fetch(ctx); err != nil {
			return nil, false, err
		}
	}
	rec := r.buf[0]
	r.buf[0] = nil
	r.buf = r.buf[1:]
	if rec.Offset >= r.end {
		r.buf, r.done = nil, true
		return nil, false, nil
	}
	return rec, true, nil
}

// fetch reads the next response from pos.
func (r *partitionReader) fetch(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis = 0 // answer at once: no long poll at the end of the partition
		req.MinBytes = 1
		req.MaxBytes = fetchMaxBytes
		req.IsolationLevel = 1 // read_committed
		t := kmsg.NewFetchRequestTopic()
		t.Topic, t.TopicID = r.topic, r.id
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition, p.FetchOffset, p.PartitionMaxBytes = r.partition, r.pos, fetchMaxBytes
		t.Partitions = append(t.Partitions, p)
		req.Topics = append(req.Topics, t)
		resp, err := req.RequestWith(ctx, r.cl.Broker(int(r.leader)))
		if err != nil {
			return fmt.Errorf("kafka: fetch %s/%d@%d: %w", r.topic, r.partition, r.pos, err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("kafka: fetch %s/%d@%d: %w", r.topic, r.partition, r.pos, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return fmt.Errorf("kafka: fetch %s/%d@%d: a response without the partition", r.topic, r.partition, r.pos)
		}
		rp := &resp.Topics[0].Partitions[0]
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			Offset: r.pos, IsolationLevel: kgo.ReadCommitted(), Topic: r.topic, Partition: r.partition,
		}, rp, r.dec, nil)
		switch {
		case errors.Is(fp.Err, kerr.OffsetOutOfRange):
			// Retention moved the log start past pos while reading: go on
			// from the new start.
			start, err := r.listStart(ctx)
			if err != nil {
				return err
			}
			if start <= r.pos {
				return fmt.Errorf("kafka: fetch %s/%d@%d: %w (log start %d)", r.topic, r.partition, r.pos, fp.Err, start)
			}
			r.logStart, r.pos = start, start
			continue
		case fp.Err != nil && kerr.IsRetriable(fp.Err) && attempt < leaderRetries:
			// The leader moved (or is being elected): ask again.
			if err := sleepCtx(ctx, time.Duration(attempt+1)*200*time.Millisecond); err != nil {
				return err
			}
			if err := r.findLeader(ctx); err != nil {
				return err
			}
			continue
		case fp.Err != nil:
			return fmt.Errorf("kafka: fetch %s/%d@%d: %w", r.topic, r.partition, r.pos, fp.Err)
		}
		if fp.LogStartOffset > r.logStart {
			r.logStart = fp.LogStartOffset
		}
		if next <= r.pos && len(fp.Records) == 0 {
			r.done = true // nothing readable from pos up to the last stable offset
			return nil
		}
		r.pos, r.buf = next, fp.Records
		return nil
	}
}

// findLeader refreshes the partition's leader and topic ID.
func (r *partitionReader) findLeader(ctx context.Context) error {
	meta, err := r.adm.Metadata(ctx, r.topic)
	if err != nil {
		return fmt.Errorf("kafka: metadata of %s: %w", r.topic, err)
	}
	td, ok := meta.Topics[r.topic]
	if !ok || td.Err != nil {
		return fmt.Errorf("kafka: metadata of %s: %w", r.topic, firstErr(td.Err, kerr.UnknownTopicOrPartition))
	}
	pd, ok := td.Partitions[r.partition]
	if !ok || pd.Err != nil {
		return fmt.Errorf("kafka: metadata of %s/%d: %w", r.topic, r.partition, firstErr(pd.Err, kerr.UnknownTopicOrPartition))
	}
	r.id, r.leader = td.ID, pd.Leader
	return nil
}

// listStart asks for the partition's log start offset.
func (r *partitionReader) listStart(ctx context.Context) (int64, error) {
	l, err := r.adm.ListStartOffsets(ctx, r.topic)
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("kafka: log start offset of %s/%d: %w", r.topic, r.partition, err)
	}
	o, ok := l.Lookup(r.topic, r.partition)
	if !ok {
		return 0, fmt.Errorf("kafka: log start offset of %s/%d: %w", r.topic, r.partition, kerr.UnknownTopicOrPartition)
	}
	return o.Offset, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
