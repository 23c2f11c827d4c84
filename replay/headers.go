package replay

import (
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The headers a replayed record gains (docs/replay.md, "Headers"). Its
// own key, value and headers are kept as they were.
const (
	// HeaderJob is the replay job's id.
	HeaderJob = "weft-replay-job"
	// HeaderSeq is the record's number in its job: a resume finds the
	// records a killed run committed by it.
	HeaderSeq = "weft-replay-seq"
	// HeaderOriginalTopic, HeaderOriginalPartition and
	// HeaderOriginalOffset say where the record was read back from.
	HeaderOriginalTopic     = "weft-replay-original-topic"
	HeaderOriginalPartition = "weft-replay-original-partition"
	HeaderOriginalOffset    = "weft-replay-original-offset"
	// HeaderOriginalTimestamp is the original record's timestamp, in
	// Unix milliseconds. The replayed record is stamped when it is
	// produced: an old timestamp would let time-based retention delete it
	// at once, and a broker may refuse it
	// (log.message.timestamp.before.max.ms).
	HeaderOriginalTimestamp = "weft-replay-original-timestamp"
	// HeaderOperator is who ran the job.
	HeaderOperator = "weft-replay-operator"
)

// headerPrefix is shared by every replay header: a replay of a replayed
// record replaces them, so a record says only its latest replay.
const headerPrefix = "weft-replay-"

// Stamp is what a job adds to each record.
type Stamp struct {
	Job      string
	Operator string
}

// replayed returns the record to produce for orig, item seq of the job,
// to target: orig's key, value and headers (those of an earlier replay
// replaced), plus the replay headers.
func (s Stamp) replayed(orig *kgo.Record, seq uint64, target string) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(orig.Headers)+7)
	for _, h := range orig.Headers {
		if !strings.HasPrefix(h.Key, headerPrefix) {
			hs = append(hs, h)
		}
	}
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderJob, Value: []byte(s.Job)},
		kgo.RecordHeader{Key: HeaderSeq, Value: strconv.AppendUint(nil, seq, 10)},
		kgo.RecordHeader{Key: HeaderOriginalTopic, Value: []byte(orig.Topic)},
		kgo.RecordHeader{Key: HeaderOriginalPartition, Value: strconv.AppendInt(nil, int64(orig.Partition), 10)},
		kgo.RecordHeader{Key: HeaderOriginalOffset, Value: strconv.AppendInt(nil, orig.Offset, 10)},
		kgo.RecordHeader{Key: HeaderOriginalTimestamp, Value: strconv.AppendInt(nil, orig.Timestamp.UnixMilli(), 10)},
		kgo.RecordHeader{Key: HeaderOperator, Value: []byte(s.Operator)},
	)
	return &kgo.Record{Topic: target, Key: orig.Key, Value: orig.Value, Headers: hs}
}

// header returns the value of the last header named key ("" when none).
func header(r *kgo.Record, key string) string {
	v := ""
	for _, h := range r.Headers {
		if h.Key == key {
			v = string(h.Value)
		}
	}
	return v
}

// JobSeq returns the job id and item number of a replayed record; ok is
// false for a record no job produced.
func JobSeq(r *kgo.Record) (job string, seq uint64, ok bool) {
	job = header(r, HeaderJob)
	if job == "" {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(header(r, HeaderSeq), 10, 64)
	if err != nil {
		return "", 0, false
	}
	return job, seq, true
}
