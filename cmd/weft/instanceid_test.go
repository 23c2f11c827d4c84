package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/collector"
)

// TestTapInstanceID: the configured id wins, else $POD_NAME, else none.
func TestTapInstanceID(t *testing.T) {
	env := func(pod string) func(string) string {
		return func(k string) string {
			if k == "POD_NAME" {
				return pod
			}
			return "elsewhere"
		}
	}
	c := collector.Default()
	assert.Equal(t, "", tapConfig(c, env("")).InstanceID, "outside Kubernetes: dynamic membership")
	assert.Equal(t, "weft-1", tapConfig(c, env("weft-1")).InstanceID, "the pod's name")
	c.InstanceID = "tap-a"
	assert.Equal(t, "tap-a", tapConfig(c, env("weft-1")).InstanceID, "an explicit id wins")
}

// TestDevInstanceID: `weft dev` makes its id once and keeps it; a file
// that does not hold one is an error naming it.
func TestDevInstanceID(t *testing.T) {
	dir := t.TempDir()
	id, err := devInstanceID(dir)
	require.NoError(t, err)
	assert.Regexp(t, `^weft-dev-[0-9a-f]{8}$`, id)
	again, err := devInstanceID(dir)
	require.NoError(t, err)
	assert.Equal(t, id, again, "the next run takes the same id")

	file := filepath.Join(dir, "instance-id")
	require.NoError(t, os.WriteFile(file, []byte("not an id\n"), 0o644))
	_, err = devInstanceID(dir)
	assert.ErrorContains(t, err, file)
	assert.ErrorContains(t, err, `"not an id" is not an instance id`)
}
