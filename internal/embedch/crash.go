package embedch

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Crash says how a child process ended, for the one line that reports it.
type Crash struct {
	// Exit is the process's end: "signal: aborted", "signal: killed",
	// "exit status 1".
	Exit string
	// Reason is what ClickHouse wrote to its error log at level fatal during
	// the run (the signal, the thread, the query, a terminate message),
	// without stack frames; else its last error line; empty if neither.
	Reason string
	// Stderr is the last lines the process wrote to its output other than
	// weft's and the engine's start-up lines: a message of the C runtime,
	// the allocator or Go's.
	Stderr string
}

// Crash reports how the child ended; call it once Done is closed.
func (s *Server) Crash() Crash {
	<-s.done
	c := Crash{Exit: "exit status 0"}
	var ee *exec.ExitError
	switch {
	case errors.As(s.exitErr, &ee):
		c.Exit = ee.ProcessState.String()
	case s.exitErr != nil:
		c.Exit = s.exitErr.Error()
	}
	c.Reason = fatalReason(readFrom(filepath.Join(s.dataDir, ServerErrorLogName), s.errStart, 64<<10))
	c.Stderr = stderrTail(readFrom(s.logFile, s.logStart, 8<<10))
	return c
}

// ServerLog is ClickHouse's own log file (ServerLogName in the data
// directory).
func (s *Server) ServerLog() string { return filepath.Join(s.dataDir, ServerLogName) }

// Uptime is how long the child has served: until now, or until it exited.
func (s *Server) Uptime() time.Duration {
	select {
	case <-s.done:
		return s.exited.Sub(s.began)
	default:
		return time.Since(s.began)
	}
}

// readFrom returns the last max bytes of path from offset from on.
func readFrom(path string, from, max int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil || end < from { // rotated: read what there is
		from = 0
	}
	from = maxInt64(from, end-max)
	buf := make([]byte, end-from)
	n, _ := f.ReadAt(buf, from)
	return buf[:n]
}

func maxInt64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

var (
	// "2026.12.03 13:45:32.591208 [ 7966 ] {} <Fatal> ClientBase: message"
	logLine      = regexp.MustCompile(`^\S+ \S+ \[ *\d+ *\] \{[^}]*\} <(\w+)> [^:]*: (.*)$`)
	stackFrame   = regexp.MustCompile(`^\d+\. `)
	versionInfix = regexp.MustCompile(`\(version [^)]*\) ?`)
)

// fatalReason condenses ClickHouse's fatal lines: no banners, stack traces,
// version details or repeats; at most 600 bytes. Without fatal lines, the
// last error line.
func fatalReason(log []byte) string {
	var fatal []string
	lastError := ""
	seen := map[string]bool{}
	for _, line := range strings.Split(string(log), "\n") {
		m := logLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		level, msg := m[1], strings.TrimSpace(m[2])
		switch level {
		case "Error":
			lastError = msg
		case "Fatal":
			if msg == "" || strings.HasPrefix(msg, "#####") || strings.HasPrefix(msg, "Stack trace:") || stackFrame.MatchString(msg) ||
				strings.HasPrefix(msg, "Integrity check") || strings.HasPrefix(msg, "Changed settings:") {
				continue
			}
			msg = strings.TrimSpace(versionInfix.ReplaceAllString(msg, ""))
			if !seen[msg] {
				seen[msg] = true
				fatal = append(fatal, msg)
			}
		}
	}
	out := lastError
	if len(fatal) > 0 {
		out = strings.Join(fatal, "; ")
	}
	if len(out) > 600 {
		out = out[:600] + "…"
	}
	return out
}

// stderrTail is the last three lines of the child's output that are not
// the start-up lines of weft or the engine.
func stderrTail(out []byte) string {
	var keep []string
	for _, l := range bytes.Split(out, []byte("\n")) {
		line := strings.TrimSpace(string(l))
		if line == "" || strings.HasPrefix(line, "--- weft: starting") || strings.HasPrefix(line, "Logging ") {
			continue
		}
		keep = append(keep, line)
	}
	keep = keep[max(0, len(keep)-3):]
	s := strings.Join(keep, " | ")
	if len(s) > 600 {
		s = s[len(s)-600:]
	}
	return s
}

func firstLineOf(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
