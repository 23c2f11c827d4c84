package main

import (
	"os"
	"runtime/debug"

	"github.com/rs/zerolog"
)

const (
	// defaultMemoryLimit is runtime.memory_limit's default: with the
	// collector's default fetch and batch sizes the tap's live heap stays
	// well under it, and the limit keeps the garbage collector from letting
	// the heap grow to twice the live size under a large backlog
	// (docs/benchmarks.md).
	defaultMemoryLimit = 224 << 20
	// minMemoryLimit rejects limits so low the collector would run the
	// garbage collector without pause.
	minMemoryLimit = 64 << 20
)

// applyMemoryLimit sets the soft memory limit of the process from c,
// unless GOMEMLIMIT is set (the runtime has already applied it). It returns
// the limit in force, or -1 when there is none.
func applyMemoryLimit(c RuntimeConfig, log zerolog.Logger) int64 {
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok && v != "" {
		limit := debug.SetMemoryLimit(-1) // a negative input only reads it
		log.Info().Str("gomemlimit", v).Int64("bytes", limit).Msg("soft memory limit from GOMEMLIMIT; runtime.memory_limit ignored")
		return limit
	}
	if c.MemoryLimit <= 0 {
		return -1
	}
	debug.SetMemoryLimit(c.MemoryLimit)
	log.Info().Int64("bytes", c.MemoryLimit).Msg("soft memory limit set (runtime.memory_limit)")
	return c.MemoryLimit
}
