package collector

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/chstore"
)

// The checkpoint half of `weft audit verify` (docs/audit.md, "Verifying
// what ClickHouse holds"): what each checkpoint must satisfy on its own,
// before the rebuilt tree is compared with them.

// checkpoints returns the log's checkpoints from ClickHouse and the sink,
// by size, after reporting the ones that do not hold on their own: a bad
// signature or text, two roots for one size, a checkpoint smaller than an
// older one, one in the sink but not in ClickHouse.
func (lv *logVerify) checkpoints(ctx context.Context) ([]ckpt, error) {
	origin := lv.lr.Origin
	rows, err := lv.store.Checkpoints(ctx, origin)
	if err != nil {
		return nil, err
	}
	var out []ckpt
	open := func(note []byte) (auditor.SignedCheckpoint, error) {
		if lv.v.Verifier != nil {
			return lv.v.Verifier.Open(note, origin)
		}
		return auditor.ParseCheckpoint(note, origin)
	}
	roots := map[uint64]auditor.Hash{}
	addRoot := func(size uint64, root auditor.Hash, from string) {
		if r, ok := roots[size]; ok && r != root {
			lv.ckptFinding(FindingCheckpoint, size, "two different roots for size %d (%s): the log forked or a checkpoint was rewritten", size, from)
			return
		}
		roots[size] = root
		out = append(out, ckpt{size: size, root: root, from: from})
	}
	// By creation time, a log's checkpoints only grow.
	byTime := slices.Clone(rows)
	slices.SortStableFunc(byTime, func(a, b chstore.CheckpointRow) int { return a.CreatedAt.Compare(b.CreatedAt) })
	var maxSize uint64
	for _, c := range byTime {
		if c.Size < maxSize {
			lv.ckptFinding(FindingCheckpoint, c.Size, "checkpoint of size %d made after one of size %d: the log shrank", c.Size, maxSize)
		}
		maxSize = max(maxSize, c.Size)
	}
	// A sink checkpoint missing from ClickHouse is reported once: as
	// missing when no stored checkpoint has its size, else as the
	// rewritten one the stored checkpoint of that size is reported as.
	stored, sizes := map[string]bool{}, map[uint64]bool{}
	for _, c := range rows {
		stored[string(c.Note)], sizes[c.Size] = true, true
		sc, err := open(c.Note)
		switch {
		case err != nil:
			lv.ckptFinding(FindingCheckpoint, c.Size, "the stored note does not verify: %v", err)
			continue
		case sc.Size != c.Size || sc.Root != c.Root:
			lv.ckptFinding(FindingCheckpoint, c.Size, "the row's size/root are not its note's (size %d)", sc.Size)
		}
		lv.lr.Checkpoints++
		addRoot(sc.Size, sc.Root, "ClickHouse")
	}
	if lv.v.CheckpointDir != "" {
		notes, err := readSink(sinkFile(lv.v.CheckpointDir, origin))
		if err != nil {
			return nil, err
		}
		waited := false // once per log: a sink of deleted checkpoints costs one wait
		for _, n := range notes {
			sc, err := open(n)
			if err != nil {
				lv.ckptFinding(FindingCheckpoint, 0, "a checkpoint in the sink does not verify: %v", err)
				continue
			}
			if lv.late && sc.Size > lv.bound {
				continue // made after verify listed the log: the next run's
			}
			if !stored[string(n)] && !sizes[sc.Size] && !waited {
				// The tap writes the sink first, then ClickHouse: a
				// checkpoint made while verify read may be on its way.
				waited = true
				if err := lv.awaitCheckpoint(ctx, n, stored); err != nil {
					return nil, err
				}
			}
			if !stored[string(n)] && !sizes[sc.Size] {
				lv.ckptFinding(FindingMissingCkpt, sc.Size, "the sink's checkpoint of size %d is not in audit_checkpoints", sc.Size)
			}
			lv.lr.Checkpoints++
			addRoot(sc.Size, sc.Root, "sink")
		}
	}
	if lv.late {
		// Read after the log's size was listed: checkpoints past it cover
		// leaves stored after the rows were read from, the next run's.
		out = slices.DeleteFunc(out, func(c ckpt) bool { return c.size > lv.bound })
	}
	slices.SortStableFunc(out, func(a, b ckpt) int { return cmpU64(a.size, b.size) })
	if len(out) > 0 {
		lv.lr.Checkpointed = out[len(out)-1].size
	}
	return out, nil
}

// checkpointInFlight bounds how long verify waits for a checkpoint it
// found in the sink to reach audit_checkpoints (the tap inserts it right
// after writing the sink).
const checkpointInFlight = 5 * time.Second

// awaitCheckpoint reads the log's stored checkpoints again until one is
// note, byte for byte, for up to checkpointInFlight, adding the notes it
// reads to stored. A checkpoint still missing then is reported by the
// caller.
func (lv *logVerify) awaitCheckpoint(ctx context.Context, note []byte, stored map[string]bool) error {
	deadline := time.Now().Add(checkpointInFlight)
	for !stored[string(note)] && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		rows, err := lv.store.Checkpoints(ctx, lv.lr.Origin)
		if err != nil {
			return err
		}
		for _, c := range rows {
			stored[string(c.Note)] = true
		}
	}
	return nil
}

// readSink reads a checkpoint sink file (appendCheckpoint's format); a
// missing file is no checkpoints.
func readSink(name string) ([][]byte, error) {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint sink: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var out [][]byte
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			return out, nil // the end, or a checkpoint being appended: the next run reads it
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint sink %s: %w", name, err)
		}
		var size, n int
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "checkpoint %d %d", &size, &n); err != nil || n < 0 || n > 1<<20 {
			return nil, fmt.Errorf("checkpoint sink %s: bad line %q", name, line)
		}
		note := make([]byte, n)
		if _, err := io.ReadFull(br, note); errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return out, nil // a checkpoint being appended
		} else if err != nil {
			return nil, fmt.Errorf("checkpoint sink %s: %w", name, err)
		}
		out = append(out, note)
	}
}
