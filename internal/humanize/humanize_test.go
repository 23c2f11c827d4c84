package humanize

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		45 * time.Second:               "45s",
		7*time.Minute + 30*time.Second: "7m30s",
		2*time.Hour + 5*time.Minute:    "2h05m",
		76*time.Hour + 20*time.Minute:  "3d04h",
		1500 * time.Millisecond:        "2s",
		47*time.Hour + 59*time.Minute:  "47h59m",
	} {
		assert.Equal(t, want, Duration(d), d.String())
	}
	assert.Equal(t, "-", Seconds(-1))
	assert.Equal(t, "1m30s", Seconds(90))
}
