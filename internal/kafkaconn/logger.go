package kafkaconn

import (
	"sync/atomic"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Logger adapts zerolog to franz-go's kgo.Logger (franz-go publishes no
// zerolog plugin on the module proxy, and the interface is two methods).
// It can be muted, so that start-up against a wrong address ends in one
// clear error line instead of a burst of retry warnings.
type Logger struct {
	l     zerolog.Logger
	muted atomic.Bool
}

// NewLogger returns a kgo.Logger writing to l.
func NewLogger(l zerolog.Logger) *Logger {
	return &Logger{l: l.With().Str("lib", "franz-go").Logger()}
}

// Mute silences (true) or restores (false) the logger.
func (z *Logger) Mute(on bool) { z.muted.Store(on) }

// Level implements kgo.Logger. franz-go's info level is chatty (a line per
// connection), so weft's info maps to franz-go's warn.
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

// Log implements kgo.Logger.
func (z *Logger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if z.muted.Load() {
		return
	}
	var ev *zerolog.Event
	switch level {
	case kgo.LogLevelError:
		ev = z.l.Error()
	case kgo.LogLevelWarn:
		ev = z.l.Warn()
	case kgo.LogLevelInfo:
		ev = z.l.Debug()
	default:
		ev = z.l.Trace()
	}
	for i := 0; i+1 < len(keyvals); i += 2 {
		k, _ := keyvals[i].(string)
		if err, ok := keyvals[i+1].(error); ok {
			ev = ev.AnErr(k, err)
			continue
		}
		ev = ev.Interface(k, keyvals[i+1])
	}
	ev.Msg(msg)
}
