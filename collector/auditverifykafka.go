package collector

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
)

// `weft audit verify --kafka` (docs/audit.md, "Comparing Kafka with the
// leaves"): after the logs verified against ClickHouse, each one verified
// whole is compared with what Kafka holds of its partition, offset by
// offset, as a read_committed consumer sees it.
//
//   - A Kafka record at a record leaf's offset must be that record: with
//     the source key, its C_source is the leaf's (else source-mismatch).
//   - A Kafka record inside a gap leaf, or past the log's end but below the
//     tap's committed offset, was never stored (never-stored): the tap
//     moved past it.
//   - A record leaf Kafka no longer returns was compacted or deleted, one
//     before Kafka's log start offset was removed by retention: counted,
//     not findings. Transaction markers and aborted records are not
//     returned under read_committed, and the tap logged them as gaps.

// AuditKafka is how verify reads Kafka.
type AuditKafka struct {
	// Client reaches the tap's cluster. Verify uses it read-only: metadata,
	// listed offsets, the tap group's committed offsets and Fetch requests;
	// never a group membership, an offset commit or a produce.
	Client *kgo.Client
	// Group is the tap's consumer group (collector.group): its committed
	// offset is how far the tap says it stored a partition. Empty: records
	// past a log's end are not checked.
	Group string
	// SourceKey is the tap's source key (audit.source_key_file): with it
	// each record's C_source is checked; nil matches records by offset only.
	SourceKey *auditor.SourceKey
	// Decoder, when set, names the order of a record never stored (the
	// tap's own decoding of the tap's configuration).
	Decoder *Decoder
}

// AuditKafkaReport is what Kafka holds of one log.
type AuditKafkaReport struct {
	// Skipped says why the log was not compared (a broken log); the rest is
	// then zero.
	Skipped string `json:"skipped,omitempty"`
	// From and To are the offsets read, [From, To): from the log's first
	// offset (or where --since started), or Kafka's log start offset when
	// later, to the log's end or the tap's committed offset, whichever is
	// further, but not past Kafka's last stable offset.
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// LogStart and LastStable are Kafka's log start and last stable
	// offsets; Committed the tap group's committed offset, -1 for none.
	LogStart   int64 `json:"log_start_offset"`
	LastStable int64 `json:"last_stable_offset"`
	Committed  int64 `json:"committed_offset"`
	// Records counts the records Kafka returned in the range.
	Records uint64 `json:"records"`
	// Matched counts record leaves whose Kafka record has their C_source;
	// OffsetOnly those matched by offset alone (no source key, or a leaf
	// without C_source: the tap had no key).
	Matched    uint64 `json:"matched"`
	OffsetOnly uint64 `json:"matched_by_offset_only"`
	// NotOnKafka counts record leaves Kafka no longer returns (compacted
	// or deleted); BeforeStart those before its log start offset
	// (retention).
	NotOnKafka  uint64 `json:"not_on_kafka"`
	BeforeStart uint64 `json:"before_log_start"`
}

// kafkaCommitted reads the tap group's committed offsets. It is read
// before the logs are: the tap stores a batch's leaves before it commits
// its offsets, so every offset committed then is covered by the leaves
// read after.
func kafkaCommitted(ctx context.Context, k AuditKafka) (kadm.OffsetResponses, error) {
	if k.Group == "" {
		return nil, nil
	}
	offs, err := kadm.NewClient(k.Client).FetchOffsets(ctx, k.Group)
	if err != nil {
		return nil, fmt.Errorf("kafka: committed offsets of group %s: %w", k.Group, err)
	}
	return offs, nil
}

// verifyKafka compares Kafka with each log of lvs (rep.Logs, in order).
func verifyKafka(ctx context.Context, store *chstore.Store, k AuditKafka, committed kadm.OffsetResponses,
	progress func(string, uint64), rep *AuditVerifyReport, lvs []*logVerify) error {
	if len(lvs) == 0 {
		return nil // no topic to ask about: kadm would list every topic
	}
	adm := kadm.NewClient(k.Client)
	var topics []string
	for _, lv := range lvs {
		if !slices.Contains(topics, lv.lr.Topic) {
			topics = append(topics, lv.lr.Topic)
		}
	}
	meta, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return fmt.Errorf("kafka: metadata: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("kafka: log start offsets: %w", err)
	}
	stable, err := adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("kafka: last stable offsets: %w", err)
	}
	kv := kafkaVerify{k: k, store: store, adm: adm, dec: kgo.DefaultDecompressor(), progress: progress}
	for i, lv := range lvs {
		kr := &AuditKafkaReport{Committed: -1}
		rep.Logs[i].Kafka = kr
		if lv.isBroken {
			kr.Skipped = "the log is broken (see its broken-log finding)"
			continue
		}
		r := &partitionReader{cl: k.Client, adm: adm, topic: lv.lr.Topic, partition: lv.lr.Partition, dec: kv.dec}
		if err := kafkaRange(lv, kr, r, meta, starts, stable, committed); err != nil {
			return err
		}
		if err := kv.run(ctx, lv, kr, r); err != nil {
			return err
		}
	}
	if progress != nil {
		progress(PhaseKafka, kv.read)
	}
	return nil
}

// kafkaRange sets the range of the partition to read: see
// AuditKafkaReport.From. A partition Kafka does not have (its topic was
// deleted) is an empty one.
func kafkaRange(lv *logVerify, kr *AuditKafkaReport, r *partitionReader, meta kadm.Metadata,
	starts, stable kadm.ListedOffsets, committed kadm.OffsetResponses) error {
	t, p := lv.lr.Topic, lv.lr.Partition
	if c, ok := committed.Lookup(t, p); ok && c.Err == nil && c.At >= 0 {
		kr.Committed = c.At
	}
	td, ok := meta.Topics[t]
	if ok && errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		ok = false
	}
	if ok && td.Err != nil {
		return fmt.Errorf("kafka: metadata of %s: %w", t, td.Err)
	}
	var pd kadm.PartitionDetail
	if ok {
		pd, ok = td.Partitions[p]
	}
	if !ok {
		r.done = true // not on Kafka: every record leaf is not on Kafka
		kr.From, kr.To = max(lv.kFirst, 0), max(lv.kFirst, 0)
		return nil
	}
	r.id, r.leader = td.ID, pd.Leader
	start, okS := starts.Lookup(t, p)
	last, okL := stable.Lookup(t, p)
	switch {
	case !okS || start.Err != nil:
		return fmt.Errorf("kafka: log start offset of %s/%d: %w", t, p, firstErr(start.Err, kerr.UnknownTopicOrPartition))
	case !okL || last.Err != nil:
		return fmt.Errorf("kafka: last stable offset of %s/%d: %w", t, p, firstErr(last.Err, kerr.UnknownTopicOrPartition))
	}
	kr.LogStart, kr.LastStable = start.Offset, last.Offset
	r.logStart = start.Offset
	if lv.kFirst < 0 { // an empty log: nothing to compare
		r.done = true
		return nil
	}
	r.pos = max(start.Offset, lv.kFirst)
	r.end = min(last.Offset, max(lv.next, kr.Committed))
	kr.From, kr.To = r.pos, max(r.pos, r.end)
	return nil
}

// kafkaVerify merges one log's leaves with its partition's records.
type kafkaVerify struct {
	k        AuditKafka
	store    *chstore.Store
	adm      *kadm.Client
	dec      kgo.Decompressor
	progress func(string, uint64)
	read     uint64 // records read, over every log
}

func (kv *kafkaVerify) run(ctx context.Context, lv *logVerify, kr *AuditKafkaReport, r *partitionReader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	leafNext, leafStop, leafErr := pull(func(fn func(chstore.AuditLeafRow) error) error {
		return kv.store.AuditLeavesFrom(ctx, lv.lr.Topic, lv.lr.Partition, lv.kFrom, fn)
	})
	defer leafStop()
	defer cancel() // before the iterator stops: a read left early ends its query

	rec, ok, err := r.next(ctx)
	advance := func() {
		kr.Records++
		kv.read++
		if kv.progress != nil && kv.read%1024 == 0 {
			kv.progress(PhaseKafka, kv.read)
		}
		rec, ok, err = r.next(ctx)
	}
	neverStored := func(detail string) {
		lv.find(AuditFinding{Kind: FindingNeverStored, Offset: rec.Offset, OrderID: kv.orderID(rec), Detail: detail})
	}
	var prev uint64
	first := true
	for err == nil {
		row, more := leafNext()
		if !more || row.LeafIndex >= lv.size {
			break // leaves stored after the logs were verified are not compared
		}
		if !first && row.LeafIndex == prev {
			continue // a leaf stored twice: verified once already
		}
		first, prev = false, row.LeafIndex
		leaf, perr := auditor.ParseLeaf(row.Leaf)
		if perr != nil {
			return fmt.Errorf("%s leaf %d: changed while verifying: %w", lv.lr.Origin, row.LeafIndex, perr)
		}
		switch leaf.Kind {
		case auditor.KindRecord:
			for err == nil && ok && rec.Offset < leaf.Offset { // only before a log's first leaf: none
				neverStored("Kafka holds a committed record no leaf covers")
				advance()
			}
			switch {
			case err != nil:
			case ok && rec.Offset == leaf.Offset:
				kv.match(lv, kr, leaf, row, rec)
				advance()
			case leaf.Offset < r.logStart:
				kr.BeforeStart++
			default:
				kr.NotOnKafka++
			}
		case auditor.KindGap:
			for err == nil && ok && rec.Offset < leaf.End {
				neverStored(fmt.Sprintf("Kafka holds a committed record here, but the log has a gap for offsets %d to %d: the tap moved past it without storing it", leaf.Offset, leaf.End))
				advance()
			}
		}
	}
	for err == nil && ok {
		neverStored(fmt.Sprintf("Kafka holds a committed record past the log's end (offset %d) and below the tap's committed offset %d: the tap moved past it without storing it", lv.next, kr.Committed))
		advance()
	}
	return firstErr(err, *leafErr)
}

// match compares a record leaf with Kafka's record at its offset.
func (kv *kafkaVerify) match(lv *logVerify, kr *AuditKafkaReport, leaf auditor.Leaf, row chstore.AuditLeafRow, rec *kgo.Record) {
	if kv.k.SourceKey == nil || leaf.Source == (auditor.Hash{}) {
		kr.OffsetOnly++
		return
	}
	if kv.k.SourceKey.Commit(sourceRecord(rec)) == leaf.Source {
		kr.Matched++
		return
	}
	idx := row.LeafIndex
	lv.find(AuditFinding{Kind: FindingSourceMismatch, Offset: leaf.Offset, LeafIndex: &idx, OrderID: row.OrderID,
		Detail: "the stored record is not what Kafka holds at this offset (C_source differs)"})
}

// orderID is the order a Kafka record is about, as the tap would decode
// it; empty without a decoder or for a record it cannot decode.
func (kv *kafkaVerify) orderID(rec *kgo.Record) string {
	if kv.k.Decoder == nil {
		return ""
	}
	e, err := kv.k.Decoder.Decode(rec)
	if err != nil {
		return ""
	}
	return e.OrderID
}

// sourceRecord is a Kafka record as its C_source commits to it (docs/audit.md,
// "C_source and the order tag"): key, value and headers in record order.
func sourceRecord(r *kgo.Record) auditor.SourceRecord {
	src := auditor.SourceRecord{Key: r.Key, Value: r.Value}
	if len(r.Headers) > 0 {
		src.Headers = make([]auditor.Header, len(r.Headers))
		for i, h := range r.Headers {
			src.Headers[i] = auditor.Header{Name: h.Key, Value: h.Value}
		}
	}
	return src
}
