package collector

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

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
		notes, err := readSink(filepath.Join(lv.v.CheckpointDir, url.PathEscape(origin)+".checkpoints"))
		if err != nil {
			return nil, err
		}
		for _, n := range notes {
			sc, err := open(n)
			if err != nil {
				lv.ckptFinding(FindingCheckpoint, 0, "a checkpoint in the sink does not verify: %v", err)
				continue
			}
			if !stored[string(n)] && !sizes[sc.Size] {
				lv.ckptFinding(FindingMissingCkpt, sc.Size, "the sink's checkpoint of size %d is not in audit_checkpoints", sc.Size)
			}
			lv.lr.Checkpoints++
			addRoot(sc.Size, sc.Root, "sink")
		}
	}
	slices.SortStableFunc(out, func(a, b ckpt) int { return cmpU64(a.size, b.size) })
	if len(out) > 0 {
		lv.lr.Checkpointed = out[len(out)-1].size
	}
	return out, nil
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
		if err == io.EOF && line == "" {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint sink %s: %w", name, err)
		}
		var size, n int
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "checkpoint %d %d", &size, &n); err != nil || n < 0 || n > 1<<20 {
			return nil, fmt.Errorf("checkpoint sink %s: bad line %q", name, line)
		}
		note := make([]byte, n)
		if _, err := io.ReadFull(br, note); err != nil {
			return nil, fmt.Errorf("checkpoint sink %s: %w", name, err)
		}
		out = append(out, note)
	}
}
