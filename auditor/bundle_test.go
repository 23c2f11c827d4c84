package auditor

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBundleVerifies(t *testing.T) {
	s := newScenario(t)
	data := s.zipped(t)
	b, err := ReadBundle(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	rep, err := VerifyBundle(b, s.vkey)
	require.NoError(t, err)
	assert.True(t, rep.Authenticated)
	require.Len(t, rep.Events, 3)
	assert.Equal(t, []string{"verified", "erased", "verified"}, []string{rep.Events[0].Status, rep.Events[1].Status, rep.Events[2].Status})
	assert.Equal(t, Position{Topic: "orders", Partition: 3, Offset: 112}, rep.Events[2].Position)
	assert.Equal(t, uint64(6), rep.Events[2].LeafIndex, "offsets 103..109 are one gap leaf")
	assert.Equal(t, "ORD-1", rep.Events[0].Row.Columns["order_id"])
	assert.Contains(t, rep.Events[0].Row.Value, "411111******1111")
	require.NotNil(t, rep.Events[1].Erasure)
	assert.Equal(t, "bob", rep.Events[1].Erasure.Actor)
	assert.Equal(t, "GDPR request 42", rep.Events[1].Erasure.Reason)
	require.Len(t, rep.Checkpoints, 2)
	assert.Equal(t, "weft/c1/orders/3", rep.Checkpoints[1].Origin)
	assert.Equal(t, uint64(14), rep.Checkpoints[1].Size, "12 records and 2 gaps")
	assert.Len(t, rep.Actions, 2)
	assert.Contains(t, rep.Summary(), "3 events (1 erased) and 2 operator actions")

	// Without a key: consistent, not authenticated.
	rep, err = VerifyBundle(b, "")
	require.NoError(t, err)
	assert.False(t, rep.Authenticated)
	assert.Contains(t, rep.Summary(), "NOT AUTHENTICATED")
}

// TestBundleRejects: each way of tampering, named.
func TestBundleRejects(t *testing.T) {
	_, otherKey, err := GenerateKey("weft-test")
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		change func(b *Bundle)
		key    string
		want   error
		reason string
	}{
		{"row changed", func(b *Bundle) {
			b.Events[0].Row = bytes.Replace(b.Events[0].Row, []byte("411111"), []byte("411112"), 1)
		}, "", ErrTampered, "do not match the leaf's stored commitment"},
		{"salt of another row", func(b *Bundle) { b.Events[0].Salt = b.Events[2].Salt }, "", ErrTampered, "stored commitment"},
		{"row of another event", func(b *Bundle) { b.Events[0].Row, b.Events[0].Salt = b.Events[2].Row, b.Events[2].Salt }, "", ErrTampered, "stored commitment"},
		{"row deleted, no erasure", func(b *Bundle) {
			b.Events[0].Row, b.Events[0].Salt = nil, nil
		}, "", ErrTampered, "no erasure is named"},
		{"row deleted, an erasure that does not name it", func(b *Bundle) {
			b.Events[0].Row, b.Events[0].Salt = nil, nil
			b.Manifest.Events[0].ErasedBy = new(int)
		}, "", ErrTampered, "not a successful erasure"},
		{"erased by an export", func(b *Bundle) {
			one := 1
			b.Manifest.Events[1].ErasedBy = &one
		}, "", ErrTampered, "not a successful erasure"},
		{"offsets swapped", func(b *Bundle) { b.Manifest.Events[0].Offset, b.Manifest.Events[2].Offset = 112, 100 }, "", ErrTampered, "the manifest lists"},
		{"leaf index changed", func(b *Bundle) { b.Manifest.Events[0].LeafIndex++ }, "", ErrTampered, "proves leaf"},
		{"event listed twice", func(b *Bundle) {
			b.Manifest.Events[2] = b.Manifest.Events[0]
			b.Events[2] = b.Events[0]
		}, "", ErrTampered, "listed twice"},
		{"proof of another event", func(b *Bundle) { b.Events[0].Proof = b.Events[2].Proof }, "", ErrTampered, "proves leaf"},
		{"another cluster", func(b *Bundle) { b.Manifest.Cluster = "c2" }, "", ErrTampered, `expected "weft/c2/actions"`},
		{"another order", func(b *Bundle) { b.Manifest.OrderID = "ORD-2" }, "", ErrTampered, `the row is of order "ORD-1"`},
		{"wrong key", func(*Bundle) {}, otherKey, ErrUnverifiable, "is not signed by weft-test+"},
		{"unknown format", func(b *Bundle) { b.Manifest.Format = "weft-audit-bundle/v9" }, "", ErrTampered, "format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScenario(t)
			tc.change(&s.bundle)
			key := s.vkey
			if tc.key != "" {
				key = tc.key
			}
			_, err := VerifyBundle(s.bundle, key)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.reason)
		})
	}
}

// TestBundleUnsignedCheckpoints: a bundle of a weft without a signing key
// is consistent without a key, and unverifiable with one.
func TestBundleUnsignedCheckpoints(t *testing.T) {
	s := newScenario(t)
	for i := range s.bundle.Events {
		p, err := parseTLogProof(s.bundle.Events[i].Proof)
		require.NoError(t, err)
		cp, err := ParseCheckpoint(p.Checkpoint, LogOrigin("c1", "orders", 3))
		require.NoError(t, err)
		unsigned, err := (*Signer)(nil).Sign(cp.Checkpoint)
		require.NoError(t, err)
		assert.False(t, unsigned.Signed)
		s.bundle.Events[i].Proof = TLogProof(p.Index, p.Hashes, unsigned)
	}
	rep, err := VerifyBundle(s.bundle, "")
	require.NoError(t, err)
	assert.False(t, rep.Checkpoints[1].Signed)
	_, err = VerifyBundle(s.bundle, s.vkey)
	assert.ErrorIs(t, err, ErrUnverifiable)
	assert.ErrorContains(t, err, "unsigned")
}

// TestBundleAnyByteChanged: a bundle with any single byte of an event's
// row, salt, leaf or proof (checkpoint included), or of an action's leaf
// or proof, changed is rejected; a byte of the manifest changed is either
// rejected or proves exactly what the bundle proved (it is not signed:
// everything it says is checked against the leaves, or labelled a claim).
func TestBundleAnyByteChanged(t *testing.T) {
	s := newScenario(t)
	want, err := VerifyBundle(s.bundle, s.vkey)
	require.NoError(t, err)
	clone := func(b Bundle) Bundle {
		c := b
		c.Events = append([]EventEvidence(nil), b.Events...)
		c.Actions = append([]ActionEvidence(nil), b.Actions...)
		return c
	}
	files := 0
	for i := range s.bundle.Events {
		for _, f := range []struct {
			name string
			get  func(*EventEvidence) *[]byte
		}{{"row", func(e *EventEvidence) *[]byte { return &e.Row }}, {"salt", func(e *EventEvidence) *[]byte { return &e.Salt }},
			{"leaf", func(e *EventEvidence) *[]byte { return &e.Leaf }}, {"proof", func(e *EventEvidence) *[]byte { return &e.Proof }}} {
			orig := *f.get(&s.bundle.Events[i])
			if orig == nil {
				continue
			}
			files++
			for pos := range orig {
				for _, x := range []byte{0x01, 0x80, 0xff} {
					b := clone(s.bundle)
					changed := bytes.Clone(orig)
					changed[pos] ^= x
					*f.get(&b.Events[i]) = changed
					_, err := VerifyBundle(b, s.vkey)
					if err == nil {
						t.Fatalf("event %d %s byte %d ^ %#x: accepted", i, f.name, pos, x)
					}
				}
			}
		}
	}
	for i := range s.bundle.Actions {
		for _, proofFile := range []bool{false, true} {
			orig := s.bundle.Actions[i].Leaf
			if proofFile {
				orig = s.bundle.Actions[i].Proof
			}
			files++
			for pos := range orig {
				b := clone(s.bundle)
				changed := bytes.Clone(orig)
				changed[pos] ^= 0x01
				if proofFile {
					b.Actions[i].Proof = changed
				} else {
					b.Actions[i].Leaf = changed
				}
				if _, err := VerifyBundle(b, s.vkey); err == nil {
					t.Fatalf("action %d (proof %v) byte %d: accepted", i, proofFile, pos)
				}
			}
		}
	}
	assert.Equal(t, 2*4+2+2*2, files)

	// The manifest, through the zip: rejected, or the same proof.
	manifest, err := json.MarshalIndent(s.bundle.Manifest, "", "  ")
	require.NoError(t, err)
	for pos := range manifest {
		changed := bytes.Clone(manifest)
		changed[pos] ^= 0x01
		var m Manifest
		if decodeStrict(changed, &m) != nil {
			continue
		}
		b := clone(s.bundle)
		b.Manifest = m
		rep, err := VerifyBundle(b, s.vkey)
		if err != nil {
			continue
		}
		rep.Claims = want.Claims
		assert.Equal(t, want, rep, "manifest byte %d changed: verified, and proves something else", pos)
	}
}

// TestReadBundleRejects: malformed files are rejected with a reason.
func TestReadBundleRejects(t *testing.T) {
	s := newScenario(t)
	data := s.zipped(t)
	for _, tc := range []struct {
		name   string
		data   []byte
		reason string
	}{
		{"empty", nil, "not a valid zip"},
		{"truncated", data[:len(data)/2], "not a valid zip"},
		{"garbage", bytes.Repeat([]byte("weft"), 100), "not a valid zip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadBundle(bytes.NewReader(tc.data), int64(len(tc.data)))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrTampered)
			assert.Contains(t, err.Error(), tc.reason)
		})
	}
	// A single byte of the zip changed is caught by the zip's checksums
	// or by VerifyBundle; only a zip header's metadata (a date, a
	// comment) may change without changing what is proven.
	want, err := VerifyBundle(s.bundle, s.vkey)
	require.NoError(t, err)
	for pos := 0; pos < len(data); pos += 7 {
		changed := bytes.Clone(data)
		changed[pos] ^= 0x04
		b, err := ReadBundle(bytes.NewReader(changed), int64(len(changed)))
		if err != nil {
			assert.ErrorIs(t, err, ErrTampered)
			continue
		}
		rep, err := VerifyBundle(b, s.vkey)
		if err != nil {
			continue
		}
		rep.Claims = want.Claims
		assert.Equal(t, want, rep, "zip byte %d changed: verified, and proves something else", pos)
	}
}

// FuzzReadBundle: whatever the bytes, ReadBundle and VerifyBundle never
// panic, every error wraps ErrTampered or ErrUnverifiable, and a bundle
// that verifies with the test key proves nothing the genuine bundle did
// not: the fuzzer cannot forge a signature, so every event and action it
// proves must be one of the genuine ones.
func FuzzReadBundle(f *testing.F) {
	s := newScenario(f)
	data := s.zipped(f)
	genuine, err := VerifyBundle(s.bundle, s.vkey)
	require.NoError(f, err)
	f.Add(data)
	f.Add(data[:len(data)-20])
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ReadBundle(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("error without ErrTampered: %v", err)
			}
			return
		}
		rep, err := VerifyBundle(b, s.vkey)
		if err != nil {
			if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrUnverifiable) {
				t.Fatalf("error without ErrTampered or ErrUnverifiable: %v", err)
			}
			return
		}
		for _, e := range rep.Events {
			if !containsEvent(genuine.Events, e) {
				t.Fatalf("proves an event the genuine bundle does not: %+v", e)
			}
		}
		for _, a := range rep.Actions {
			if !containsAction(genuine.Actions, a) {
				t.Fatalf("proves an action the genuine bundle does not: %+v", a)
			}
		}
	})
}

func containsEvent(list []EventReport, e EventReport) bool {
	for _, g := range list {
		if g.Position == e.Position && g.LeafIndex == e.LeafIndex && g.Status == e.Status {
			gj, _ := json.Marshal(g)
			ej, _ := json.Marshal(e)
			if e.Erasure != nil {
				e.Erasure.Action = g.Erasure.Action // a subset renumbers actions
				ej, _ = json.Marshal(e)
			}
			return bytes.Equal(gj, ej)
		}
	}
	return false
}

func containsAction(list []ActionReport, a ActionReport) bool {
	aj, _ := json.Marshal(a)
	for _, g := range list {
		if gj, _ := json.Marshal(g); bytes.Equal(gj, aj) {
			return true
		}
	}
	return false
}

// TestGoldenBundle: the bundle in testdata (ORD-1 of the scenario, signed
// by the test key in testdata/bundle.vkey) still reads and verifies, so a
// bundle handed to an auditor stays checkable by later versions of weft.
// It is an example for other tools, too (docs/audit.md). -update rewrites
// it.
func TestGoldenBundle(t *testing.T) {
	s := newScenario(t)
	zipPath, keyPath := filepath.Join("testdata", "bundle.zip"), filepath.Join("testdata", "bundle.vkey")
	if *update {
		require.NoError(t, os.WriteFile(zipPath, s.zipped(t), 0o644))
		require.NoError(t, os.WriteFile(keyPath, []byte(s.vkey+"\n"), 0o644))
	}
	data, err := os.ReadFile(zipPath)
	require.NoError(t, err)
	key, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	b, err := ReadBundle(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	rep, err := VerifyBundle(b, strings.TrimSpace(string(key)))
	require.NoError(t, err)
	want, err := VerifyBundle(s.bundle, s.vkey)
	require.NoError(t, err)
	assert.Equal(t, want, rep)
}
