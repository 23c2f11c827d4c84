package consistency

import (
	"fmt"
	"strings"
)

// Replayed records (docs/replay.md, "What the detector sees"): weft replay
// and redrive produce a record again with its key, value and headers, plus
// headers naming the original. The detector takes such a record for what
// it is, another delivery of its original: the same event, never a
// duplicate of it.

// replayIdentity gives a replayed record without an event id of its own
// the id its original was given (the tap names such an event by its
// record's coordinates, which differ for the replay).
func (e ChainEvent) replayIdentity() ChainEvent {
	if e.ReplayOf == "" || e.EventID != fmt.Sprintf("%s/%d/%d", e.Topic, e.Partition, e.Offset) {
		return e
	}
	at := strings.LastIndexByte(e.ReplayOf, '@')
	slash := strings.LastIndexByte(e.ReplayOf[:max(at, 0)], '/')
	if at < 0 || slash < 0 {
		return e
	}
	e.EventID = e.ReplayOf[:slash] + "/" + e.ReplayOf[slash+1:at] + "/" + e.ReplayOf[at+1:]
	return e
}

// withoutReplaysOfPresent leaves out the replayed records whose original
// is among evs: its bytes are the original's by construction, so any
// difference the detector would see (a payload hashed under another
// masking policy, a dead-letter copy's headers) is not a second payload.
// A replay whose original is not stored stands for it.
func withoutReplaysOfPresent(evs []ChainEvent) []ChainEvent {
	replays := false
	for i := range evs {
		if evs[i].ReplayOf != "" {
			replays = true
			break
		}
	}
	if !replays {
		return evs
	}
	present := make(map[string]bool, len(evs))
	for _, e := range evs {
		present[fmt.Sprintf("%s/%d@%d", e.Topic, e.Partition, e.Offset)] = true
	}
	out := make([]ChainEvent, 0, len(evs))
	for _, e := range evs {
		if e.ReplayOf == "" || !present[e.ReplayOf] {
			out = append(out, e)
		}
	}
	return out
}
