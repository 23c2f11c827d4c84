package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weft-sh/weft/internal/demo"
)

// TestDemoCommandConsumers: `weft demo` runs the services' consumer groups
// with live traffic, by default, and lists them in the manifest; not
// without live traffic, nor with --consumers=false. A --live-rate below the
// default lagging rate halves the rate instead of failing.
func TestDemoCommandConsumers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		rate  float64 // the lagging group's rate; 0: no consumers
		group string  // the lagging group's name
	}{
		{"live", []string{"--live-rate", "0.4", "--group-prefix", "t."}, 0.2, "t.fulfillment-svc"},
		{"chosen services", []string{"--lagging", "pickup", "--lagging-rate", "0.3", "--stopping", ""}, 0.3, "pickup-svc"},
		{"no live traffic", []string{"--live-rate", "0"}, 0, ""},
		{"consumers off", []string{"--consumers=false"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kf, err := kfake.NewCluster(kfake.NumBrokers(1))
			require.NoError(t, err)
			defer kf.Close()
			path := filepath.Join(t.TempDir(), "manifest.json")
			cmd := newDemoCmd()
			cmd.SetArgs(append([]string{"--brokers", strings.Join(kf.ListenAddrs(), ","), "--orders", "10",
				"--live-orders", "1", "--step-delay-min", "1ms", "--step-delay-max", "5ms", "--stop-after", "50ms",
				"--log-level", "error", "--manifest", path}, tc.args...))
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			require.NoError(t, cmd.Execute())

			b, err := os.ReadFile(path)
			require.NoError(t, err)
			var m demo.Manifest
			require.NoError(t, json.Unmarshal(b, &m))
			if tc.rate == 0 {
				assert.Empty(t, m.Consumers)
				return
			}
			assert.Len(t, m.Consumers, len(demo.Services()))
			lagging := m.GroupsWith(demo.BehaviorLagging)
			require.Len(t, lagging, 1)
			assert.Equal(t, tc.group, lagging[0].Group)
			assert.Equal(t, tc.rate, lagging[0].Rate)
		})
	}
}
