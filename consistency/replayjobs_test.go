package consistency

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// knownJobs asks the store only for ids it does not know: a known job
// once, an unknown one again only after unknownTTL, and every id of a
// pass in one query.
func TestKnownJobsCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	stored := map[string]bool{"rpl-real": true}
	var asked [][]string
	k := newKnownJobs(func(_ context.Context, ids []string) (map[string]bool, error) {
		asked = append(asked, ids)
		out := map[string]bool{}
		for _, id := range ids {
			if stored[id] {
				out[id] = true
			}
		}
		return out, nil
	}, func() time.Time { return now })
	ctx := context.Background()

	got, err := k.filter(ctx, map[string]bool{"rpl-real": true, "rpl-forged": true})
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{"rpl-real": true}, got)
	require.Len(t, asked, 1)
	assert.ElementsMatch(t, []string{"rpl-real", "rpl-forged"}, asked[0], "one query for the ids of a pass")

	got, err = k.filter(ctx, map[string]bool{"rpl-real": true, "rpl-forged": true})
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{"rpl-real": true}, got)
	assert.Len(t, asked, 1, "known and recently unknown ids are not asked again")

	// A new job is found on its first miss.
	stored["rpl-new"] = true
	got, err = k.filter(ctx, map[string]bool{"rpl-new": true})
	require.NoError(t, err)
	assert.True(t, got["rpl-new"])
	assert.Equal(t, []string{"rpl-new"}, asked[1])

	// An unknown id is asked again after unknownTTL (and stays unknown).
	now = now.Add(unknownTTL + time.Second)
	got, err = k.filter(ctx, map[string]bool{"rpl-forged": true, "rpl-real": true})
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{"rpl-real": true}, got)
	assert.Equal(t, []string{"rpl-forged"}, asked[2])
}

// trustReplays clears the replay marks of a record whose job is unknown,
// so the checks see it as the second payload it is.
func TestUntrustedReplayIsADuplicate(t *testing.T) {
	var c chainB
	c.add("OrderPlaced", "orders", -1)
	c.add("PaymentAuthorized", "payments", 0)
	again := c.evs[1]
	again.Topic, again.Partition, again.Offset = "payments", 0, 900
	again.PayloadHash = "other"
	again.ReplayOf, again.ReplayJob = "payments/0@1", "rpl-forged"
	e := &Engine{jobs: newKnownJobs(func(context.Context, []string) (map[string]bool, error) {
		return map[string]bool{}, nil
	}, time.Now)}
	byOrder := map[string][]ChainEvent{"o": append(append([]ChainEvent{}, c.evs...), again)}
	require.NoError(t, e.trustReplays(context.Background(), byOrder))
	assert.Contains(t, kinds(CheckOrder(nil, byOrder["o"], t0, Windows{})), KindDuplicate)
	assert.Empty(t, byOrder["o"][2].ReplayOf)
}
