package consistency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// KindStuck: a non-terminal order made no progress within its step's SLA.
const KindStuck = "stuck"

// Kinds lists every finding kind, in the order docs/consistency.md
// ("Finding kinds") gives them.
var Kinds = []string{KindStuck, KindGap, KindCausalityViolation, KindOrphan, KindConcurrentConflict,
	KindDuplicate, KindInvariantViolation, KindDivergence}

// Finding statuses.
const (
	StatusOpen         = "open"
	StatusAcknowledged = "acknowledged"
	StatusResolved     = "resolved"
)

// Finding is a stored problem with one order, with the evidence for it.
type Finding struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	OrderID  string `json:"order_id"`
	Workflow string `json:"workflow,omitempty"`
	// Step is the workflow step of a stuck finding.
	Step string `json:"step,omitempty"`
	// Subject says what in the order the finding is about.
	Subject string `json:"subject,omitempty"`
	// Since is when the condition began, where that is known: for a stuck
	// order, when it entered the step.
	Since      time.Time       `json:"since,omitzero"`
	Status     string          `json:"status"`
	Summary    string          `json:"summary"`
	Evidence   json.RawMessage `json:"evidence"`
	FirstSeen  time.Time       `json:"first_seen"`
	LastSeen   time.Time       `json:"last_seen"`
	ResolvedAt *time.Time      `json:"resolved_at,omitempty"`
	AckBy      string          `json:"ack_by,omitempty"`
	AckAt      *time.Time      `json:"ack_at,omitempty"`
	AckReason  string          `json:"ack_reason,omitempty"`
}

func findingID(kind, orderID, workflow, subject string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + orderID + "\x00" + workflow + "\x00" + subject))
	return hex.EncodeToString(sum[:10])
}

// FindingFilter narrows a findings query; zero values match everything.
type FindingFilter struct {
	ID      string
	Kind    string
	OrderID string
	// Status is open, acknowledged, resolved, or "active" (open or acknowledged).
	Status string
	Limit  int
}

const findingColumns = `finding_id, kind, order_id, workflow, step, subject, since, status, summary, evidence,
       first_seen, last_seen, resolved_at, ack_by, ack_at, ack_reason`

// Findings lists stored findings, newest first.
func (e *Engine) Findings(ctx context.Context, f FindingFilter) ([]Finding, error) {
	var where []string
	var args []any
	if f.ID != "" {
		where, args = append(where, "finding_id = ?"), append(args, f.ID)
	}
	if f.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, f.Kind)
	}
	if f.OrderID != "" {
		where, args = append(where, "order_id = ?"), append(args, f.OrderID)
	}
	switch f.Status {
	case "":
	case "active":
		where = append(where, "status != 'resolved'")
	default:
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	q := "SELECT " + findingColumns + " FROM " + e.store.Table("findings") + " FINAL"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY last_seen DESC, finding_id"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return e.queryFindings(ctx, q, args...)
}

// activeFindingsOf returns the open or acknowledged findings of the given orders by id.
func (e *Engine) activeFindingsOf(ctx context.Context, orderIDs []string) (map[string]Finding, error) {
	out := map[string]Finding{}
	for start := 0; start < len(orderIDs); start += checkBatch {
		fs, err := e.queryFindings(ctx, "SELECT "+findingColumns+" FROM "+e.store.Table("findings")+
			" FINAL WHERE order_id IN ? AND status != 'resolved'", orderIDs[start:min(start+checkBatch, len(orderIDs))])
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			out[f.ID] = f
		}
	}
	return out, nil
}

func (e *Engine) queryFindings(ctx context.Context, q string, args ...any) ([]Finding, error) {
	rows, err := e.store.Conn().Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read findings: %w", err)
	}
	defer rows.Close()
	var out []Finding
	for rows.Next() {
		var (
			fd              Finding
			ev              string
			resolved, ackAt time.Time
		)
		if err := rows.Scan(&fd.ID, &fd.Kind, &fd.OrderID, &fd.Workflow, &fd.Step, &fd.Subject, &fd.Since, &fd.Status, &fd.Summary, &ev,
			&fd.FirstSeen, &fd.LastSeen, &resolved, &fd.AckBy, &ackAt, &fd.AckReason); err != nil {
			return nil, fmt.Errorf("scan finding: %w", err)
		}
		fd.Evidence = json.RawMessage(ev)
		if fd.Since.Unix() <= 0 {
			fd.Since = time.Time{}
		}
		if resolved.Unix() > 0 {
			fd.ResolvedAt = &resolved
		}
		if ackAt.Unix() > 0 {
			fd.AckAt = &ackAt
		}
		out = append(out, fd)
	}
	return out, rows.Err()
}

// OpenFindings returns the findings that are open or acknowledged, optionally of one kind.
func (e *Engine) OpenFindings(ctx context.Context, kind string) ([]Finding, error) {
	return e.Findings(ctx, FindingFilter{Kind: kind, Status: "active"})
}

// ErrNoFinding is returned when a finding id is unknown.
var ErrNoFinding = errors.New("no such finding")

// Acknowledge records that a person has seen an open finding: who, when and
// why. It stays acknowledged while the problem lasts and resolves itself
// like any other when the order is fixed.
func (e *Engine) Acknowledge(ctx context.Context, id, by, reason string) (Finding, error) {
	if strings.TrimSpace(by) == "" {
		return Finding{}, errors.New("acknowledge: who acknowledges is required")
	}
	fs, err := e.Findings(ctx, FindingFilter{ID: id})
	if err != nil {
		return Finding{}, err
	}
	for _, f := range fs {
		if f.ID != id {
			continue
		}
		if f.Status == StatusResolved {
			return Finding{}, fmt.Errorf("acknowledge %s: the finding is already resolved", id)
		}
		now := time.Now().UTC()
		f.Status, f.AckBy, f.AckAt, f.AckReason = StatusAcknowledged, by, &now, reason
		if err := e.writeFindings(ctx, []Finding{f}, now); err != nil {
			return Finding{}, err
		}
		return f, nil
	}
	return Finding{}, fmt.Errorf("acknowledge %s: %w", id, ErrNoFinding)
}

// findingsBatch bounds one insert of findings: clickhouse-go holds a whole
// batch encoded and compressed, ~3 KB a finding with its evidence.
const findingsBatch = 2500

// writeFindings stores a new version of each finding, in bounded batches.
func (e *Engine) writeFindings(ctx context.Context, fs []Finding, at time.Time) error {
	for len(fs) > findingsBatch {
		if err := e.writeFindingsBatch(ctx, fs[:findingsBatch], at); err != nil {
			return err
		}
		fs = fs[findingsBatch:]
	}
	return e.writeFindingsBatch(ctx, fs, at)
}

func (e *Engine) writeFindingsBatch(ctx context.Context, fs []Finding, at time.Time) error {
	if len(fs) == 0 {
		return nil
	}
	b, err := e.store.Conn().PrepareBatch(ctx, "INSERT INTO "+e.store.Table("findings")+
		` (finding_id, kind, order_id, workflow, step, subject, since, status, summary, evidence, first_seen, last_seen,
		   resolved_at, ack_by, ack_at, ack_reason, updated_at)`)
	if err != nil {
		return fmt.Errorf("prepare findings batch: %w", err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	for _, f := range fs {
		var resolved, ackAt time.Time
		if f.ResolvedAt != nil {
			resolved = *f.ResolvedAt
		}
		if f.AckAt != nil {
			ackAt = *f.AckAt
		}
		if err := b.Append(f.ID, f.Kind, f.OrderID, f.Workflow, f.Step, f.Subject, f.Since, f.Status, f.Summary, string(f.Evidence),
			f.FirstSeen, f.LastSeen, resolved, f.AckBy, ackAt, f.AckReason, at); err != nil {
			return fmt.Errorf("append finding: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d findings: %w", len(fs), err)
	}
	return nil
}
