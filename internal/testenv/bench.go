package testenv

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// EnvInt reads a benchmark knob: the integer in the environment variable
// name (digits may be grouped with _), or def when it is unset.
func EnvInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}

// Percentiles returns the median and the 95th percentile (nearest rank)
// of d, which it does not change.
func Percentiles(d []time.Duration) (p50, p95 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return rank(0.50), rank(0.95)
}
