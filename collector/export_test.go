package collector

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// CheckSameAsOracle lets tests outside the package (which may import
// benchkit) run the differential check of decode_diff_test.go.
func CheckSameAsOracle(t testing.TB, d *Decoder, r *kgo.Record) { checkSame(t, d, r) }
