package consistency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Finding kinds (DESIGN.md, "Version vectors").
const (
	KindStuck = "stuck"
)

// Finding statuses.
const (
	StatusOpen         = "open"
	StatusAcknowledged = "acknowledged"
	StatusResolved     = "resolved"
)

// Finding is a stored problem with one order, with the evidence for it.
type Finding struct {
	ID         string          `json:"id"`
	Kind       string          `json:"kind"`
	OrderID    string          `json:"order_id"`
	Workflow   string          `json:"workflow"`
	Step       string          `json:"step"`
	Status     string          `json:"status"`
	Summary    string          `json:"summary"`
	Evidence   json.RawMessage `json:"evidence"`
	FirstSeen  time.Time       `json:"first_seen"`
	LastSeen   time.Time       `json:"last_seen"`
	ResolvedAt *time.Time      `json:"resolved_at,omitempty"`
}

func findingID(kind, orderID, workflow, step string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + orderID + "\x00" + workflow + "\x00" + step))
	return hex.EncodeToString(sum[:10])
}

// OpenFindings returns the findings that are open or acknowledged, optionally of one kind.
func (e *Engine) OpenFindings(ctx context.Context, kind string) ([]Finding, error) {
	q := `SELECT finding_id, kind, order_id, workflow, step, status, summary, evidence, first_seen, last_seen
FROM ` + e.store.Table("findings") + ` FINAL
WHERE status != 'resolved' AND (? = '' OR kind = ?)
ORDER BY first_seen, finding_id`
	rows, err := e.store.Conn().Query(ctx, q, kind, kind)
	if err != nil {
		return nil, fmt.Errorf("read findings: %w", err)
	}
	defer rows.Close()
	var out []Finding
	for rows.Next() {
		var f Finding
		var ev string
		if err := rows.Scan(&f.ID, &f.Kind, &f.OrderID, &f.Workflow, &f.Step, &f.Status, &f.Summary, &ev, &f.FirstSeen, &f.LastSeen); err != nil {
			return nil, fmt.Errorf("scan finding: %w", err)
		}
		f.Evidence = json.RawMessage(ev)
		out = append(out, f)
	}
	return out, rows.Err()
}

// writeFindings stores a new version of each finding.
func (e *Engine) writeFindings(ctx context.Context, fs []Finding, at time.Time) error {
	if len(fs) == 0 {
		return nil
	}
	b, err := e.store.Conn().PrepareBatch(ctx, "INSERT INTO "+e.store.Table("findings")+
		` (finding_id, kind, order_id, workflow, step, status, summary, evidence, first_seen, last_seen, resolved_at, updated_at)`)
	if err != nil {
		return fmt.Errorf("prepare findings batch: %w", err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	for _, f := range fs {
		var resolved time.Time
		if f.ResolvedAt != nil {
			resolved = *f.ResolvedAt
		}
		if err := b.Append(f.ID, f.Kind, f.OrderID, f.Workflow, f.Step, f.Status, f.Summary, string(f.Evidence),
			f.FirstSeen, f.LastSeen, resolved, at); err != nil {
			return fmt.Errorf("append finding: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d findings: %w", len(fs), err)
	}
	return nil
}
