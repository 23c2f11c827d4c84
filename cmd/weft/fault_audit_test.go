package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/chstore"
)

// The fault tests run weft with the audit trail on (docs/audit.md), and
// after each scenario check that the logs came through whole: what `weft
// audit verify` checks, and, per partition, one record leaf for every
// stored record and nothing else (the stream has no transactions, so no
// gap), at dense leaf indices from 0.

// faultAudit is the audit trail of one fault test: keys generated for it
// and the checkpoint sink, shared by every weft process the test starts.
type faultAudit struct {
	env      []string
	verifier *auditor.Verifier
	dir      string
}

const faultCluster = "fault"

func newFaultAudit(t *testing.T) *faultAudit {
	t.Helper()
	dir := t.TempDir()
	skey, vkey, err := auditor.GenerateKey("weft-fault")
	require.NoError(t, err)
	signing, source := filepath.Join(dir, "signing.key"), filepath.Join(dir, "source.key")
	require.NoError(t, os.WriteFile(signing, []byte(skey+"\n"), 0o600))
	require.NoError(t, os.WriteFile(source, []byte(auditor.GenerateSourceKey()+"\n"), 0o600))
	v, err := auditor.NewVerifier(vkey)
	require.NoError(t, err)
	sink := filepath.Join(dir, "checkpoints")
	return &faultAudit{verifier: v, dir: sink, env: []string{
		"WEFT_AUDIT_ENABLED=true", "WEFT_AUDIT_CLUSTER_ID=" + faultCluster,
		"WEFT_AUDIT_SIGNING_KEY_FILE=" + signing, "WEFT_AUDIT_SOURCE_KEY_FILE=" + source,
		"WEFT_AUDIT_CHECKPOINT_DIR=" + sink,
		// Checkpoints every second, so the restarts of a test resume from
		// states past a checkpoint (the resume check reads the leaves since).
		"WEFT_AUDIT_CHECKPOINT_EVERY=1s",
	}}
}

// requireAuditWhole waits until every partition of topic has a leaf per
// stored record (the leaves go in after the rows), then checks the trail:
// VerifyAudit finds nothing, and each partition's log is one record leaf
// per stored offset, each once, at leaf indices 0, 1, 2….
func requireAuditWhole(t *testing.T, chCfg chstore.Config, topic string, a *faultAudit) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := chstore.Open(ctx, chCfg)
	require.NoError(t, err)
	defer s.Close()
	got, _ := stored(t, chCfg, topic)
	want := map[int32]map[int64]bool{}
	for c := range got {
		if want[c.partition] == nil {
			want[c.partition] = map[int64]bool{}
		}
		want[c.partition][c.offset] = true
	}

	var leaves map[int32][]chstore.AuditLeafRow
	read := func() int {
		leaves = map[int32][]chstore.AuditLeafRow{}
		n := 0
		for p := range want {
			require.NoError(t, s.AuditLeaves(ctx, topic, p, func(r chstore.AuditLeafRow) error {
				leaves[p] = append(leaves[p], r)
				n++
				return nil
			}))
		}
		return n
	}
	for deadline := time.Now().Add(time.Minute); read() < len(got) && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
	}

	rep, err := collector.VerifyAudit(ctx, s, collector.AuditVerify{ClusterID: faultCluster, Topic: topic, Verifier: a.verifier, CheckpointDir: a.dir})
	require.NoError(t, err)
	for _, f := range rep.Findings {
		t.Errorf("audit verify: %s", f)
	}
	assert.True(t, rep.Authenticated)
	var checkpoints int
	for _, l := range rep.Logs {
		checkpoints += l.Checkpoints
	}
	assert.NotZero(t, checkpoints, "the logs were checkpointed")

	total := 0
	for p, offsets := range want {
		seen := map[int64]bool{}
		for i, r := range leaves[p] {
			require.Equal(t, uint64(i), r.LeafIndex, "partition %d: leaf indices dense from 0, each once (no fork, no skip, no double append)", p)
			require.Equal(t, "record", r.Kind, "partition %d leaf %d: a stream without transactions has records only", p, i)
			require.False(t, seen[r.Offset], "partition %d: offset %d logged twice", p, r.Offset)
			require.True(t, offsets[r.Offset], "partition %d: offset %d logged and not stored", p, r.Offset)
			seen[r.Offset] = true
		}
		require.Len(t, seen, len(offsets), "partition %d: a record leaf per stored record", p)
		total += len(seen)
	}
	t.Logf("audit trail whole: %d record leaves in %d logs, %d checkpoints", total, len(rep.Logs), checkpoints)
}
