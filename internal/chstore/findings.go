package chstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// FindingRow is one version of a finding in the findings table. A time
// never set (resolved_at of an unresolved finding, since when unknown) is
// the Unix epoch when read.
type FindingRow struct {
	ID, Kind, OrderID, Workflow, Step, Subject string
	// Reason says why a stuck order is stuck ("" on other kinds).
	Reason                          string
	Since                           time.Time
	Status, Summary                 string
	Evidence                        string // JSON
	FirstSeen, LastSeen, ResolvedAt time.Time
	AckBy                           string
	AckAt                           time.Time
	AckReason                       string
}

// FindingQuery narrows Findings; zero values match everything.
type FindingQuery struct {
	ID, Kind, OrderID string
	// Status keeps one status.
	Status string
	// Active keeps the findings not resolved (open or acknowledged).
	Active bool
	// Limit caps the rows returned; 0 means no cap.
	Limit int
}

// StatusResolved is the status of a finding that no longer holds; the
// others (open, acknowledged) are active.
const StatusResolved = "resolved"

const findingColumns = `finding_id, kind, order_id, workflow, step, reason, subject, since, status, summary, evidence,
       first_seen, last_seen, resolved_at, ack_by, ack_at, ack_reason`

// Findings reads the latest version of the findings q matches, last seen
// first.
func (s *Store) Findings(ctx context.Context, q FindingQuery) ([]FindingRow, error) {
	var where []string
	var args []any
	if q.ID != "" {
		where, args = append(where, "finding_id = ?"), append(args, q.ID)
	}
	if q.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, q.Kind)
	}
	if q.OrderID != "" {
		where, args = append(where, "order_id = ?"), append(args, q.OrderID)
	}
	if q.Active {
		where, args = append(where, "status != ?"), append(args, StatusResolved)
	}
	if q.Status != "" {
		where, args = append(where, "status = ?"), append(args, q.Status)
	}
	sql := "SELECT " + findingColumns + " FROM " + s.Table("findings") + " FINAL"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY last_seen DESC, finding_id"
	if q.Limit > 0 {
		sql, args = sql+" LIMIT ?", append(args, q.Limit)
	}
	return s.queryFindings(ctx, sql, args...)
}

// ActiveFindingsOf reads the open or acknowledged findings of the given
// orders, in one query.
func (s *Store) ActiveFindingsOf(ctx context.Context, orderIDs []string) ([]FindingRow, error) {
	return s.queryFindings(ctx, "SELECT "+findingColumns+" FROM "+s.Table("findings")+
		" FINAL WHERE order_id IN ? AND status != ?", orderIDs, StatusResolved)
}

func (s *Store) queryFindings(ctx context.Context, q string, args ...any) ([]FindingRow, error) {
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read findings: %w", err)
	}
	defer rows.Close()
	var out []FindingRow
	for rows.Next() {
		var f FindingRow
		if err := rows.Scan(&f.ID, &f.Kind, &f.OrderID, &f.Workflow, &f.Step, &f.Reason, &f.Subject, &f.Since, &f.Status, &f.Summary, &f.Evidence,
			&f.FirstSeen, &f.LastSeen, &f.ResolvedAt, &f.AckBy, &f.AckAt, &f.AckReason); err != nil {
			return nil, fmt.Errorf("scan finding: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// findingsBatch bounds one insert of findings: clickhouse-go holds a whole
// batch encoded and compressed, ~3 KB a finding with its evidence.
const findingsBatch = 2500

// InsertFindings stores a new version of each finding, updated at at, in
// bounded batches.
func (s *Store) InsertFindings(ctx context.Context, fs []FindingRow, at time.Time) error {
	for len(fs) > findingsBatch {
		if err := s.insertFindings(ctx, fs[:findingsBatch], at); err != nil {
			return err
		}
		fs = fs[findingsBatch:]
	}
	return s.insertFindings(ctx, fs, at)
}

func (s *Store) insertFindings(ctx context.Context, fs []FindingRow, at time.Time) error {
	if len(fs) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.Table("findings")+
		` (finding_id, kind, order_id, workflow, step, reason, subject, since, status, summary, evidence, first_seen, last_seen,
		   resolved_at, ack_by, ack_at, ack_reason, updated_at)`)
	if err != nil {
		return fmt.Errorf("prepare findings batch: %w", err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	for _, f := range fs {
		if err := b.Append(f.ID, f.Kind, f.OrderID, f.Workflow, f.Step, f.Reason, f.Subject, f.Since, f.Status, f.Summary, f.Evidence,
			f.FirstSeen, f.LastSeen, f.ResolvedAt, f.AckBy, f.AckAt, f.AckReason, at); err != nil {
			return fmt.Errorf("append finding: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d findings: %w", len(fs), err)
	}
	return nil
}

// FindingCount is how many active findings there are of one kind in one
// workflow.
type FindingCount struct {
	Kind, Workflow string
	N              uint64
}

// ActiveFindingCounts counts the open or acknowledged findings by kind and
// workflow.
func (s *Store) ActiveFindingCounts(ctx context.Context) ([]FindingCount, error) {
	rows, err := s.conn.Query(ctx, "SELECT kind, workflow, count() FROM "+s.Table("findings")+
		" FINAL WHERE status != ? GROUP BY kind, workflow", StatusResolved)
	if err != nil {
		return nil, fmt.Errorf("count active findings: %w", err)
	}
	defer rows.Close()
	var out []FindingCount
	for rows.Next() {
		var c FindingCount
		if err := rows.Scan(&c.Kind, &c.Workflow, &c.N); err != nil {
			return nil, fmt.Errorf("scan finding count: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// KindStuck is the finding kind of a stuck order: the findings table is
// keyed by kind first so that the stuck findings are read alone.
const KindStuck = "stuck"

// StepRef names one step of one workflow.
type StepRef struct{ Workflow, Step string }

// StuckFindingQuery narrows StuckFindings; zero values match everything.
type StuckFindingQuery struct {
	Workflow, Step string
	// Steps keeps the findings in one of these steps (none: any step).
	Steps []StepRef
	// Reason keeps the stuck orders stuck for this reason.
	Reason string
	// SinceBy keeps the findings whose condition began at or before it.
	SinceBy time.Time
	// Limit caps the rows returned; 0 means no cap.
	Limit int
}

// StuckFindingRow is an active stuck finding: the order, where it is stuck
// and since when.
type StuckFindingRow struct {
	OrderID, Workflow, Step, Reason string
	Since                           time.Time
}

// StuckFindings reads the active stuck findings q matches, stuck longest
// first, and how many match before the limit.
func (s *Store) StuckFindings(ctx context.Context, q StuckFindingQuery) ([]StuckFindingRow, int, error) {
	where, args := q.where()
	limit := ""
	if q.Limit > 0 {
		limit, args = "LIMIT ?", append(args, q.Limit)
	}
	rows, err := s.conn.Query(ctx, `
SELECT order_id, workflow, step, reason, since, count() OVER () AS total
FROM `+s.Table("findings")+` FINAL
WHERE `+where+`
ORDER BY since, order_id
`+limit, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("stuck findings: %w", err)
	}
	defer rows.Close()
	var (
		out   []StuckFindingRow
		total uint64
	)
	for rows.Next() {
		var r StuckFindingRow
		if err := rows.Scan(&r.OrderID, &r.Workflow, &r.Step, &r.Reason, &r.Since, &total); err != nil {
			return nil, 0, fmt.Errorf("scan stuck finding: %w", err)
		}
		out = append(out, r)
	}
	return out, int(total), rows.Err()
}

// where is the condition the active stuck findings q matches satisfy.
func (q StuckFindingQuery) where() (string, []any) {
	where := []string{"kind = ?", "status != ?"}
	args := []any{KindStuck, StatusResolved}
	if q.Workflow != "" {
		where, args = append(where, "workflow = ?"), append(args, q.Workflow)
	}
	if q.Step != "" {
		where, args = append(where, "step = ?"), append(args, q.Step)
	}
	if len(q.Steps) > 0 {
		steps := make([]clickhouse.GroupSet, len(q.Steps))
		for i, st := range q.Steps {
			steps[i] = clickhouse.GroupSet{Value: []any{st.Workflow, st.Step}}
		}
		where, args = append(where, "(workflow, step) IN (?)"), append(args, steps)
	}
	if q.Reason != "" {
		where, args = append(where, "reason = ?"), append(args, q.Reason)
	}
	if !q.SinceBy.IsZero() {
		where, args = append(where, "since <= "+msParam), append(args, q.SinceBy.UnixMilli())
	}
	return strings.Join(where, " AND "), args
}

// StuckFindingReasons counts the active stuck findings q matches (its
// limit aside) by reason.
func (s *Store) StuckFindingReasons(ctx context.Context, q StuckFindingQuery) (map[string]int, error) {
	where, args := q.where()
	rows, err := s.conn.Query(ctx, `SELECT reason, count() FROM `+s.Table("findings")+` FINAL
WHERE `+where+`
GROUP BY reason`, args...)
	if err != nil {
		return nil, fmt.Errorf("stuck findings by reason: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			reason string
			n      uint64
		)
		if err := rows.Scan(&reason, &n); err != nil {
			return nil, fmt.Errorf("scan stuck findings by reason: %w", err)
		}
		out[reason] = int(n)
	}
	return out, rows.Err()
}

// StuckEvidence reads the evidence (JSON) of the active stuck findings of
// the given orders, by order id. The findings are keyed by kind and order,
// so this reads a few granules; order_progress, keyed by order alone, would
// cost a granule per order in every part.
func (s *Store) StuckEvidence(ctx context.Context, orderIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(orderIDs))
	if len(orderIDs) == 0 {
		return out, nil
	}
	rows, err := s.conn.Query(ctx, `SELECT order_id, evidence FROM `+s.Table("findings")+` FINAL
WHERE kind = ? AND order_id IN ? AND status != ?`, KindStuck, orderIDs, StatusResolved)
	if err != nil {
		return nil, fmt.Errorf("last events of stuck orders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, ev string
		if err := rows.Scan(&id, &ev); err != nil {
			return nil, fmt.Errorf("scan stuck evidence: %w", err)
		}
		out[id] = ev
	}
	return out, rows.Err()
}

// StuckCount is how many orders are stuck in one step of one workflow for
// one reason, and since when the longest stuck of them waits.
type StuckCount struct {
	Workflow, Step, Reason string
	N                      uint64
	// Oldest is the earliest time one of them entered the step.
	Oldest time.Time
}

// StuckCounts counts the active stuck findings by workflow, step and
// reason: one row per combination that has any.
func (s *Store) StuckCounts(ctx context.Context) ([]StuckCount, error) {
	rows, err := s.conn.Query(ctx, `SELECT workflow, step, reason, count(), min(since) FROM `+s.Table("findings")+` FINAL
WHERE kind = ? AND status != ?
GROUP BY workflow, step, reason
ORDER BY workflow, step, reason`, KindStuck, StatusResolved)
	if err != nil {
		return nil, fmt.Errorf("count stuck findings: %w", err)
	}
	defer rows.Close()
	var out []StuckCount
	for rows.Next() {
		var c StuckCount
		if err := rows.Scan(&c.Workflow, &c.Step, &c.Reason, &c.N, &c.Oldest); err != nil {
			return nil, fmt.Errorf("scan stuck count: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ActiveStuckFindings reads up to limit active stuck findings whose order
// id is after after, in order id order: a range of the table's key, so a
// detector can go through every stuck order a page per pass.
func (s *Store) ActiveStuckFindings(ctx context.Context, after string, limit int) ([]FindingRow, error) {
	return s.queryFindings(ctx, "SELECT "+findingColumns+" FROM "+s.Table("findings")+
		" FINAL WHERE kind = ? AND order_id > ? AND status != ? ORDER BY order_id, finding_id LIMIT ?",
		KindStuck, after, StatusResolved, limit)
}
