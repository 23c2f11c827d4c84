package consistency

import (
	"context"
	"sync"
	"time"
)

// Replay headers are only as trustworthy as their job (docs/replay.md,
// "What the detector sees"): anyone who can produce to a topic can add a
// weft-replay-job header, and a record taken for a replay is never a
// duplicate. So a record counts as a replay only when its job is one weft
// planned, a row of replay_jobs. Otherwise its replay headers are ignored
// and it is checked like any other record.

// knownJobs caches which replay job ids are in replay_jobs. A job id is
// stored before its first record is produced, so a known id stays known
// and a real replay's job is found on the first miss. An unknown id (a
// forged header) is remembered as unknown for unknownTTL, so a topic full
// of forged headers costs one query per id and TTL, not one per pass.
type knownJobs struct {
	lookup func(context.Context, []string) (map[string]bool, error)
	now    func() time.Time

	mu      sync.Mutex
	known   map[string]bool
	unknown map[string]time.Time // id → when it was found unknown
}

// unknownTTL is how long an id found unknown is not asked for again.
const unknownTTL = time.Minute

// maxUnknown bounds the unknown ids remembered: past it they are all
// forgotten (and asked for again), so forged ids cannot grow memory.
const maxUnknown = 10_000

func newKnownJobs(lookup func(context.Context, []string) (map[string]bool, error), now func() time.Time) *knownJobs {
	return &knownJobs{lookup: lookup, now: now, known: map[string]bool{}, unknown: map[string]time.Time{}}
}

// filter returns which of ids are known jobs, asking the store in one
// query for those not cached.
func (k *knownJobs) filter(ctx context.Context, ids map[string]bool) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	now := k.now()
	var ask []string
	k.mu.Lock()
	for id := range ids {
		switch {
		case k.known[id]:
			out[id] = true
		case now.Sub(k.unknown[id]) < unknownTTL:
		default:
			ask = append(ask, id)
		}
	}
	k.mu.Unlock()
	if len(ask) == 0 {
		return out, nil
	}
	found, err := k.lookup(ctx, ask)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.unknown) > maxUnknown {
		k.unknown = map[string]time.Time{}
	}
	for _, id := range ask {
		if found[id] {
			k.known[id] = true
			delete(k.unknown, id)
			out[id] = true
		} else {
			k.unknown[id] = now
		}
	}
	return out, nil
}

// trustReplays clears the replay marks of events whose job weft does not
// know: they are checked as the records they are.
func (e *Engine) trustReplays(ctx context.Context, byOrder map[string][]ChainEvent) error {
	ids := map[string]bool{}
	for _, evs := range byOrder {
		for _, ev := range evs {
			if ev.ReplayJob != "" || ev.ReplayOf != "" {
				ids[ev.ReplayJob] = true
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	delete(ids, "") // a replay mark without a job is never trusted
	known, err := e.jobs.filter(ctx, ids)
	if err != nil {
		return err
	}
	for _, evs := range byOrder {
		for i := range evs {
			if (evs[i].ReplayJob != "" || evs[i].ReplayOf != "") && !known[evs[i].ReplayJob] {
				evs[i].ReplayJob, evs[i].ReplayOf = "", ""
			}
		}
	}
	return nil
}
