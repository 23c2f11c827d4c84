package collector

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// OracleCheck lets tests outside the package (which may import benchkit)
// run the differential check of decode_diff_test.go: the returned function
// decodes a record with the decoder of c and with the oracle, and fails t
// on any difference.
func OracleCheck(tb testing.TB, c Config) func(t testing.TB, r *kgo.Record) {
	d := newDiffDecoder(tb, c)
	return func(t testing.TB, r *kgo.Record) { checkSame(t, d, r) }
}
