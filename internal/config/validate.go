package config

import (
	"errors"
	"fmt"
	"strings"
)

// Problems collects every configuration problem with the key path it concerns,
// so a user sees all of them at once instead of fixing one per run.
type Problems struct {
	list []string
}

// Addf records a problem at path (e.g. "kafka.brokers").
func (p *Problems) Addf(path, format string, args ...any) {
	p.list = append(p.list, path+": "+fmt.Sprintf(format, args...))
}

// Merge adds another component's problems, prefixing their paths.
func (p *Problems) Merge(prefix string, err error) {
	if err == nil {
		return
	}
	var other *Problems
	if errors.As(err, &other) {
		for _, l := range other.list {
			p.list = append(p.list, prefix+"."+l)
		}
		return
	}
	p.list = append(p.list, prefix+": "+err.Error())
}

// Err returns nil when no problem was recorded.
func (p *Problems) Err() error {
	if len(p.list) == 0 {
		return nil
	}
	return p
}

func (p *Problems) Error() string {
	return "invalid configuration: " + strings.Join(p.list, "; ")
}
