package collector

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInstanceIDRule: the broker's rule for group.instance.id, checked
// when the config is, so a bad id is a config error naming the key, not
// a join refused later.
func TestInstanceIDRule(t *testing.T) {
	for _, tc := range []struct {
		id, err string
	}{
		{"", ""},
		{"weft-0", ""},
		{"weft-7d9f8c6b5-x2k4p", ""},
		{"Host_1.example", ""},
		{strings.Repeat("a", 249), ""},
		{strings.Repeat("a", 250), "250 characters, at most 249"},
		{"weft 0", `only letters, digits, '.', '_' and '-' (not " ")`},
		{"pod/weft-0", `(not "/")`},
		{"..", "not a valid instance id"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			c := Default()
			c.InstanceID = tc.id
			err := c.Validate()
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "instance_id: ")
			assert.Contains(t, err.Error(), tc.err)
		})
	}
}

func TestMaxRebalanceRule(t *testing.T) {
	c := Default()
	assert.Equal(t, 30*time.Second, c.MaxRebalance)
	assert.True(t, c.LeaveGroupOnStop)
	c.MaxRebalance = 500 * time.Millisecond
	assert.ErrorContains(t, c.Validate(), "max_rebalance: must be at least 1s, got 500ms")
}
