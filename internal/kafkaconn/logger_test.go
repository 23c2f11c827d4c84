package kafkaconn

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestLoggerLevels(t *testing.T) {
	for _, tc := range []struct {
		weft zerolog.Level
		want kgo.LogLevel
	}{
		{zerolog.TraceLevel, kgo.LogLevelDebug},
		{zerolog.DebugLevel, kgo.LogLevelInfo},
		{zerolog.InfoLevel, kgo.LogLevelWarn},
		{zerolog.WarnLevel, kgo.LogLevelWarn},
		{zerolog.ErrorLevel, kgo.LogLevelError},
		{zerolog.Disabled, kgo.LogLevelNone},
	} {
		t.Run(tc.weft.String(), func(t *testing.T) {
			assert.Equal(t, tc.want, NewLogger(zerolog.Nop().Level(tc.weft)).Level())
		})
	}
}

// Muted, nothing is logged and franz-go is told so; unmuted, a line carries
// lib=franz-go and franz-go's fields.
func TestLoggerMute(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(zerolog.New(&buf).Level(zerolog.InfoLevel))
	l.Mute(true)
	assert.Equal(t, kgo.LogLevelNone, l.Level())
	l.Log(kgo.LogLevelError, "unable to dial", "broker", "127.0.0.1:1", "err", errors.New("refused"))
	assert.Zero(t, buf.Len(), "muted")

	l.Mute(false)
	assert.Equal(t, kgo.LogLevelWarn, l.Level())
	l.Log(kgo.LogLevelError, "unable to dial", "broker", "127.0.0.1:1", "err", errors.New("refused"))
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	assert.Equal(t, map[string]any{"level": "error", "lib": "franz-go", "message": "unable to dial",
		"broker": "127.0.0.1:1", "err": "refused"}, line)
}
