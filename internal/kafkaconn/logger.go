package kafkaconn

import (
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Logger adapts zerolog to franz-go's kgo.Logger. franz-go publishes no
// zerolog plugin on the module proxy, and the interface is two methods.
func Logger(l zerolog.Logger) kgo.Logger { return zlog{l: l.With().Str("component", "kafka").Logger()} }

type zlog struct{ l zerolog.Logger }

func (z zlog) Level() kgo.LogLevel {
	switch z.l.GetLevel() {
	case zerolog.TraceLevel:
		return kgo.LogLevelDebug
	case zerolog.DebugLevel:
		return kgo.LogLevelInfo
	case zerolog.InfoLevel, zerolog.WarnLevel:
		// franz-go's info level is chatty (one line per connection); keep it at debug.
		return kgo.LogLevelWarn
	case zerolog.Disabled:
		return kgo.LogLevelNone
	default:
		return kgo.LogLevelError
	}
}

func (z zlog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
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
		ev = ev.Interface(k, keyvals[i+1])
	}
	ev.Msg(msg)
}
