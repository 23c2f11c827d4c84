package auditor

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMillisJSON: any timestamp a producer set can be reported.
func TestMillisJSON(t *testing.T) {
	for _, m := range []Millis{0, -1, 1740830400123, 1 << 62} {
		b, err := json.Marshal(m)
		require.NoError(t, err, "%d", m)
		if m < 1<<50 {
			var back Millis
			require.NoError(t, json.Unmarshal(b, &back))
			assert.Equal(t, m, back)
		}
	}
	b, _ := json.Marshal(Millis(1740830400123))
	assert.Equal(t, `"2025-03-01T12:00:00.123Z"`, string(b))
}
