package benchkit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PreloadResult says how the workload's topic came to hold its records.
type PreloadResult struct {
	Topic string
	// Reused is true when the topic already held exactly the workload (a
	// previous run against the same broker); nothing was produced.
	Reused bool
	// Took is the time spent producing (zero when reused).
	Took time.Duration
	// ValueBytes is the total size of the record values produced (zero
	// when reused).
	ValueBytes int64
}

// Preload makes the workload's topic hold exactly w.Records records. A topic
// of that name with exactly that many records over w.Partitions partitions
// is reused (the name encodes the workload); anything else there — a
// preload cut short, say — is deleted and produced again from nothing.
func Preload(ctx context.Context, brokers []string, w Workload) (PreloadResult, error) {
	res := PreloadResult{Topic: w.Topic()}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(50_000))
	if err != nil {
		return res, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	n, parts, err := topicRecords(ctx, adm, res.Topic)
	switch {
	case err != nil:
		return res, err
	case parts == w.Partitions && n == int64(w.Records):
		res.Reused = true
		return res, nil
	case parts > 0:
		if _, err := adm.DeleteTopic(ctx, res.Topic); err != nil {
			return res, fmt.Errorf("delete incomplete preload %s: %w", res.Topic, err)
		}
		if err := waitTopicGone(ctx, adm, res.Topic); err != nil {
			return res, err
		}
	}
	if _, err := adm.CreateTopic(ctx, w.Partitions, 1, nil, res.Topic); err != nil {
		return res, fmt.Errorf("create %s: %w", res.Topic, err)
	}

	start := time.Now()
	var (
		mu       sync.Mutex
		firstErr error
	)
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			firstErr = cmpErr(firstErr, err)
			mu.Unlock()
		}
	}
	err = w.Generate(res.Topic, func(recs []*kgo.Record) error {
		for _, r := range recs {
			res.ValueBytes += int64(len(r.Value))
			cl.Produce(ctx, r, done)
		}
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	})
	if ferr := cl.Flush(ctx); err == nil {
		err = ferr
	}
	if err == nil {
		err = firstErr
	}
	if err != nil {
		return res, fmt.Errorf("produce %s: %w", res.Topic, err)
	}
	res.Took = time.Since(start)
	if n, _, err := topicRecords(ctx, adm, res.Topic); err != nil {
		return res, err
	} else if n != int64(w.Records) {
		return res, fmt.Errorf("preload %s holds %d records, want %d", res.Topic, n, w.Records)
	}
	return res, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// topicRecords returns the records in topic (sum of end offsets minus start
// offsets) and its partition count; zero partitions if it does not exist.
func topicRecords(ctx context.Context, adm *kadm.Client, topic string) (int64, int32, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, 0, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, 0, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	var n int64
	var parts int32
	var missing bool
	var perr error
	ends.Each(func(o kadm.ListedOffset) {
		if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
			missing = true
			return
		}
		if o.Err != nil {
			perr = fmt.Errorf("end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
			return
		}
		parts++
		s, _ := starts.Lookup(o.Topic, o.Partition)
		n += o.Offset - s.Offset
	})
	if missing {
		return 0, 0, nil
	}
	return n, parts, perr
}

func waitTopicGone(ctx context.Context, adm *kadm.Client, topic string) error {
	for range 100 {
		_, parts, err := topicRecords(ctx, adm, topic)
		if err == nil && parts == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("topic %s still exists after deletion", topic)
}
