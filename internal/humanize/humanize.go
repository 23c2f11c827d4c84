// Package humanize renders durations the way the command line and the
// console show them to a person.
package humanize

import (
	"fmt"
	"time"
)

// Duration renders d as a person reads it: 3d04h, 2h05m, 7m30s, 45s.
func Duration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return d.String()
	}
}

// Seconds renders an age or a lag in seconds like Duration; a negative
// one is unknown: "-".
func Seconds(s float64) string {
	if s < 0 {
		return "-"
	}
	return Duration(time.Duration(s * float64(time.Second)))
}
