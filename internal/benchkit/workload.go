package benchkit

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/demo"
)

// workloadVersion is part of the topic name: bump it when the records a
// Workload generates change, so an old preload is not reused.
const workloadVersion = 1

// Workload is the benchmark's data set: demo commerce records (the three
// encodings, all event types, the demo's faults) retargeted to one topic,
// each value padded to about ValueBytes with a text field, keyed by order id
// so the default partitioner spreads them over Partitions.
type Workload struct {
	// Records is how many records the topic holds. Default 1,000,000.
	Records int
	// Partitions of the topic. Default 12.
	Partitions int32
	// ValueBytes is the mean value size aimed at; a record already larger
	// keeps its size. Default 1024.
	ValueBytes int
	// Seed makes the records deterministic (with Now).
	Seed int64
	// Now ends the demo history window of the records (their event times
	// and Kafka timestamps). Default: the time of the preload, so broker
	// retention never deletes a fresh preload.
	Now time.Time
}

// DefaultWorkload is the workload of `make bench`.
func DefaultWorkload() Workload {
	return Workload{Records: 1_000_000, Partitions: 12, ValueBytes: 1024, Seed: 1}
}

// Topic names the preloaded topic after the workload, so a preload is reused
// only for the same workload.
func (w Workload) Topic() string {
	return fmt.Sprintf("weft-bench.v%d.n%d.b%d.p%d.s%d", workloadVersion, w.Records, w.ValueBytes, w.Partitions, w.Seed)
}

// ordersPerChunk bounds the records planned at once (about 9 per order), so
// generating a million records never holds more than ~50 MB.
const ordersPerChunk = 5000

// Generate calls emit with successive chunks of records for topic until
// w.Records were emitted. The records are fresh each call: emit may keep or
// produce them.
func (w Workload) Generate(topic string, emit func([]*kgo.Record) error) error {
	now := w.Now
	if now.IsZero() {
		now = time.Now().UTC()
	}
	left := w.Records
	for chunk := 0; left > 0; chunk++ {
		cfg := demo.DefaultConfig()
		cfg.Seed = w.Seed*1_000_003 + int64(chunk)
		cfg.Orders = min(ordersPerChunk, left/8+100) // about 9 records an order
		cfg.Now = now.Truncate(time.Millisecond)
		b, err := demo.Plan(cfg)
		if err != nil {
			return fmt.Errorf("plan chunk %d: %w", chunk, err)
		}
		recs := b.Records[:min(left, len(b.Records))]
		r := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed))
		for _, rec := range recs {
			rec.Topic = topic
			rec.Value = pad(rec, w.ValueBytes, r)
		}
		if err := emit(recs); err != nil {
			return err
		}
		left -= len(recs)
	}
	return nil
}

// words make the padding: text a shop might attach to an event (notes,
// descriptions), compressible like real text rather than like zeros.
var words = strings.Fields(`the order parcel store pickup customer counter shelf aisle
	bag receipt window label fragile gift wrap note please call when ready leave
	at door front desk blue green large small extra item box returned replaced
	checked scanned packed picked signed collected evening morning weekend
	service desk locker code delivery courier van route stop zone north south
	east west floor level`)

// pad returns rec's value with a "note" text field added so that its length
// is about target×U(0.75, 1.25): inside "data" for CloudEvents structured
// mode (so it reaches the stored payload), at the top of the object for
// binary mode and plain JSON. Values already that long are unchanged.
func pad(rec *kgo.Record, target int, r *rand.Rand) []byte {
	v := rec.Value
	want := int(float64(target) * (0.75 + 0.5*r.Float64()))
	const overhead = len(`"note":"",`)
	n := want - len(v) - overhead
	if n <= 0 || len(v) == 0 || v[0] != '{' {
		return v
	}
	at := 1
	if i := bytes.Index(v, []byte(`"data":{`)); i >= 0 && bytes.Contains(v, []byte(`"specversion"`)) {
		at = i + len(`"data":{`)
	}
	var note strings.Builder
	note.Grow(n + 16)
	for note.Len() < n {
		if note.Len() > 0 {
			note.WriteByte(' ')
		}
		note.WriteString(words[r.IntN(len(words))])
	}
	field := `"note":"` + note.String()[:n] + `"`
	if v[at] != '}' {
		field += ","
	}
	out := make([]byte, 0, len(v)+len(field))
	out = append(out, v[:at]...)
	out = append(out, field...)
	return append(out, v[at:]...)
}
