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

	"github.com/weft-sh/weft/internal/chstore"
)

// KindStuck: a non-terminal order made no progress within its step's SLA.
const KindStuck = chstore.KindStuck

// Kinds lists every finding kind, in the order docs/consistency.md
// ("Finding kinds") gives them.
var Kinds = []string{KindStuck, KindGap, KindCausalityViolation, KindOrphan, KindConcurrentConflict,
	KindDuplicate, KindInvariantViolation, KindDivergence}

// Finding statuses.
const (
	StatusOpen         = "open"
	StatusAcknowledged = "acknowledged"
	StatusResolved     = chstore.StatusResolved
)

// Finding is a stored problem with one order, with the evidence for it.
type Finding struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	OrderID  string `json:"order_id"`
	Workflow string `json:"workflow,omitempty"`
	// Step is the workflow step of a stuck finding.
	Step string `json:"step,omitempty"`
	// Reason says why a stuck order is stuck (one of Reasons); its
	// evidence holds the rest (the Why of the stuck order).
	Reason string `json:"reason,omitempty"`
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

// Findings lists stored findings, newest first.
func (e *Engine) Findings(ctx context.Context, f FindingFilter) ([]Finding, error) {
	q := chstore.FindingQuery{ID: f.ID, Kind: f.Kind, OrderID: f.OrderID, Limit: f.Limit}
	if f.Status == "active" {
		q.Active = true
	} else {
		q.Status = f.Status
	}
	rows, err := e.store.Findings(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]Finding, len(rows))
	for i, r := range rows {
		out[i] = findingOf(r)
	}
	return out, nil
}

// activeFindingsOf returns the open or acknowledged findings of the given orders by id.
func (e *Engine) activeFindingsOf(ctx context.Context, orderIDs []string) (map[string]Finding, error) {
	out := map[string]Finding{}
	for start := 0; start < len(orderIDs); start += checkBatch {
		rows, err := e.store.ActiveFindingsOf(ctx, orderIDs[start:min(start+checkBatch, len(orderIDs))])
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			out[r.ID] = findingOf(r)
		}
	}
	return out, nil
}

// findingOf is the finding a stored row holds; the epoch stands for a time
// never set.
func findingOf(r chstore.FindingRow) Finding {
	f := Finding{ID: r.ID, Kind: r.Kind, OrderID: r.OrderID, Workflow: r.Workflow, Step: r.Step, Reason: r.Reason, Subject: r.Subject,
		Since: r.Since, Status: r.Status, Summary: r.Summary, Evidence: json.RawMessage(r.Evidence),
		FirstSeen: r.FirstSeen, LastSeen: r.LastSeen, AckBy: r.AckBy, AckReason: r.AckReason}
	if f.Since.Unix() <= 0 {
		f.Since = time.Time{}
	}
	if r.ResolvedAt.Unix() > 0 {
		f.ResolvedAt = &r.ResolvedAt
	}
	if r.AckAt.Unix() > 0 {
		f.AckAt = &r.AckAt
	}
	return f
}

// rowOf is the row that stores f.
func rowOf(f Finding) chstore.FindingRow {
	r := chstore.FindingRow{ID: f.ID, Kind: f.Kind, OrderID: f.OrderID, Workflow: f.Workflow, Step: f.Step, Reason: f.Reason, Subject: f.Subject,
		Since: f.Since, Status: f.Status, Summary: f.Summary, Evidence: string(f.Evidence),
		FirstSeen: f.FirstSeen, LastSeen: f.LastSeen, AckBy: f.AckBy, AckReason: f.AckReason}
	if f.ResolvedAt != nil {
		r.ResolvedAt = *f.ResolvedAt
	}
	if f.AckAt != nil {
		r.AckAt = *f.AckAt
	}
	return r
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

// writeFindings stores a new version of each finding.
func (e *Engine) writeFindings(ctx context.Context, fs []Finding, at time.Time) error {
	rows := make([]chstore.FindingRow, len(fs))
	for i, f := range fs {
		rows[i] = rowOf(f)
	}
	return e.store.InsertFindings(ctx, rows, at)
}
