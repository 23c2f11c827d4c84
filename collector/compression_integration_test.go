package collector

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
)

// codecBatches records the compression codec of every record batch fetched,
// by partition (a kgo.HookFetchBatchRead).
type codecBatches struct {
	mu    sync.Mutex
	seen  map[int32]map[uint8]int // partition → codec → records
	total int
}

func (c *codecBatches) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, p int32, m kgo.FetchBatchMetrics) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[p] == nil {
		c.seen[p] = map[uint8]int{}
	}
	c.seen[p][m.CompressionType] += m.NumRecords
	c.total += m.NumRecords
}

// TestCompressionCodecs: the same records, produced once per Kafka codec by
// franz-go and once by kcat (librdkafka, an independent implementation), are
// all stored exactly. A reader first checks from the fetched batches that
// each partition really holds its codec, so no case passes by accident
// (e.g. a producer that fell back to no compression).
func TestCompressionCodecs(t *testing.T) {
	brokers := testenv.Kafka(t)
	kcat, err := exec.LookPath("kcat")
	require.NoError(t, err, "kcat (Debian package kcat) is required; `make test` installs it")
	store := testenv.Store(t)
	topic := "orders.codec_" + testenv.Name(t)

	codecs := []struct {
		name string
		kgo  kgo.CompressionCodec
		id   uint8 // in a record batch's attributes
	}{
		{"none", kgo.NoCompression(), 0},
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	}
	type lane struct {
		producer, codec string
		id              uint8
	}
	var lanes []lane // partition i is written by lanes[i]
	for _, p := range []string{"franz-go", "kcat"} {
		for _, c := range codecs {
			lanes = append(lanes, lane{p, c.name, c.id})
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plain, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer plain.Close()
	res, err := kadm.NewClient(plain).CreateTopic(ctx, int32(len(lanes)), 1, nil, topic)
	require.NoError(t, err)
	require.NoError(t, res.Err)

	// Compressible records, the same set in every partition.
	const n = 40
	keys, values := make([]string, n), make([]string, n)
	for i := range n {
		keys[i] = fmt.Sprintf("ord-%03d", i)
		values[i] = fmt.Sprintf(`{"event_id":"ev-%03d","event_type":"OrderPlaced","order_id":"ord-%03d","note":%q}`,
			i, i, strings.Repeat("pick up in store, pay later; ", 10))
	}

	for p, l := range lanes {
		switch l.producer {
		case "franz-go":
			var codec kgo.CompressionCodec
			for _, c := range codecs {
				if c.name == l.codec {
					codec = c.kgo
				}
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchCompression(codec),
				kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(50*time.Millisecond))
			require.NoError(t, err)
			recs := make([]*kgo.Record, n)
			for i := range n {
				recs[i] = &kgo.Record{Topic: topic, Partition: int32(p), Key: []byte(keys[i]), Value: []byte(values[i])}
			}
			err = cl.ProduceSync(ctx, recs...).FirstErr()
			cl.Close()
			require.NoError(t, err, "franz-go %s", l.codec)
		case "kcat":
			var in strings.Builder
			for i := range n {
				in.WriteString(keys[i] + "\t" + values[i] + "\n")
			}
			cmd := exec.CommandContext(ctx, kcat, "-P", "-b", strings.Join(brokers, ","), "-t", topic,
				"-p", fmt.Sprint(p), "-z", l.codec, "-K", "\t", "-X", "linger.ms=50")
			cmd.Stdin = strings.NewReader(in.String())
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "kcat -z %s: %s", l.codec, out)
		}
	}

	// Each partition's batches carry its lane's codec.
	seen := &codecBatches{seen: map[int32]map[uint8]int{}}
	reader, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.WithHooks(seen))
	require.NoError(t, err)
	for read := 0; read < n*len(lanes); {
		fs := reader.PollFetches(ctx)
		require.NoError(t, fs.Err0())
		read += fs.NumRecords()
	}
	reader.Close()
	for p, l := range lanes {
		assert.Equal(t, map[uint8]int{l.id: n}, seen.seen[int32(p)], "partition %d (%s, %s): records by codec", p, l.producer, l.codec)
	}

	kc := kafkaconn.Default()
	kc.Brokers = brokers
	c := startSecureTap(t, kc, store, "g_"+testenv.Name(t), regexp.QuoteMeta(topic))
	secWaitStored(t, c, int64(n*len(lanes)))
	assert.Equal(t, Stats{Consumed: int64(n * len(lanes)), Stored: int64(n * len(lanes))}, c.Stats())

	rows, err := testenv.Conn(t).Query(ctx, "SELECT partition, offset, record_key, event_id, payload FROM "+
		store.Table("events")+" FINAL ORDER BY partition, offset")
	require.NoError(t, err)
	defer rows.Close()
	stored := map[int32][][3]string{}
	for rows.Next() {
		var (
			p                int32
			off              int64
			key, id, payload string
		)
		require.NoError(t, rows.Scan(&p, &off, &key, &id, &payload))
		require.Equal(t, int64(len(stored[p])), off, "partition %d: offsets dense from 0", p)
		stored[p] = append(stored[p], [3]string{key, id, payload})
	}
	require.NoError(t, rows.Err())
	for p, l := range lanes {
		got := stored[int32(p)]
		if !assert.Len(t, got, n, "partition %d (%s, %s)", p, l.producer, l.codec) {
			continue
		}
		for i := range n {
			assert.Equal(t, keys[i], got[i][0], "partition %d (%s, %s) offset %d", p, l.producer, l.codec, i)
			assert.Equal(t, fmt.Sprintf("ev-%03d", i), got[i][1])
			assert.JSONEq(t, values[i], got[i][2])
		}
	}
}
