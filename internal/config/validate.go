package config

import (
	"errors"
	"fmt"
	"regexp"
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

// CheckPatterns records every pattern that is not a valid regular
// expression (Go syntax), at path[i].
func (p *Problems) CheckPatterns(path string, pats []string) {
	for i, s := range pats {
		if _, err := regexp.Compile(s); err != nil {
			p.Addf(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
}

// Merge adds another component's problems, prefixing their paths; an empty
// prefix keeps them as they are (a block whose keys sit beside the caller's).
func (p *Problems) Merge(prefix string, err error) {
	if err == nil {
		return
	}
	var other *Problems
	if errors.As(err, &other) {
		for _, l := range other.list {
			if prefix != "" {
				l = prefix + "." + l
			}
			p.list = append(p.list, l)
		}
		return
	}
	if prefix == "" {
		p.list = append(p.list, err.Error())
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
