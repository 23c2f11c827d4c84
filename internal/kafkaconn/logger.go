package kafkaconn

import (
	"sync/atomic"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kzerolog"
)

// Logger is franz-go's kzerolog plugin with two changes weft needs. It can
// be muted, so that start-up against a wrong address ends in one clear
// error line instead of a burst of retry warnings. And franz-go's info
// level is chatty (a line per connection): franz-go logs at info only when
// weft logs at debug, at debug only when weft logs at trace. Lines keep
// franz-go's level.
type Logger struct {
	l      zerolog.Logger
	plugin *kzerolog.Logger
	muted  atomic.Bool
}

// NewLogger returns a kgo.Logger writing to l, each line with lib=franz-go.
func NewLogger(l zerolog.Logger) *Logger {
	z := &Logger{l: l.With().Str("lib", "franz-go").Logger()}
	z.plugin = kzerolog.New(&z.l)
	return z
}

// Mute silences (true) or restores (false) the logger.
func (z *Logger) Mute(on bool) { z.muted.Store(on) }

// Level implements kgo.Logger: the most detailed level franz-go logs at.
func (z *Logger) Level() kgo.LogLevel {
	if z.muted.Load() {
		return kgo.LogLevelNone
	}
	switch z.l.GetLevel() {
	case zerolog.TraceLevel:
		return kgo.LogLevelDebug
	case zerolog.DebugLevel:
		return kgo.LogLevelInfo
	case zerolog.InfoLevel, zerolog.WarnLevel:
		return kgo.LogLevelWarn
	case zerolog.Disabled:
		return kgo.LogLevelNone
	default:
		return kgo.LogLevelError
	}
}

// Log implements kgo.Logger through the plugin, unless muted.
func (z *Logger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if z.muted.Load() {
		return
	}
	z.plugin.Log(level, msg, keyvals...)
}
