package collector_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/benchkit"
)

// The records of `make bench` (demo records padded to about 1 KB, the
// padding in the stored payload) decode as the replaced decoder decoded them.
func TestDecodeWorkloadMatchesOracle(t *testing.T) {
	w := benchkit.DefaultWorkload()
	w.Records = 3000
	w.Now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	check := collector.OracleCheck(t, collector.Default())
	n := 0
	if err := w.Generate("bench", func(rs []*kgo.Record) error {
		for _, r := range rs {
			check(t, r)
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d records compared", n)
}
