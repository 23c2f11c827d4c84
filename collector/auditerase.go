package collector

import (
	"context"
	"errors"
	"fmt"

	"github.com/weft-sh/weft/auditor"
)

// Erase is an erasure request (docs/audit.md, "Erasure"): who asks, from
// where, for which order, and why.
type Erase struct {
	OrderID, Reason string
	Actor, Origin   string
}

// Erased is what an erasure did.
type Erased struct {
	OrderID string `json:"order_id"`
	// Records are the records whose rows were erased.
	Records []auditor.Position `json:"records"`
	// Action is the erase action's index in the operator-actions log.
	Action uint64 `json:"action"`
}

// EraseOrder removes the payloads of an order's stored rows and the salts
// of their leaves, after logging the erasure — naming every record — in
// the operator-actions log, so that verify reports those rows as erased by
// that action rather than as tampering, and every log and proof still
// verifies. It logs first: an erasure that then fails leaves rows that
// still verify as they are, and is logged again as a failure; running it
// again finishes it.
func (l *ActionLog) EraseOrder(ctx context.Context, e Erase) (Erased, error) {
	if e.OrderID == "" {
		return Erased{}, errors.New("erase: no order id")
	}
	if e.Reason == "" {
		return Erased{}, errors.New("erase: a reason is required (it goes into the operator-actions log)")
	}
	out := Erased{OrderID: e.OrderID}
	ts, err := l.store.OrderRecordPositions(ctx, e.OrderID)
	if err != nil {
		return out, err
	}
	if len(ts) == 0 {
		return out, fmt.Errorf("erase: order %s: no stored records", e.OrderID)
	}
	for _, t := range ts {
		out.Records = append(out.Records, auditor.Position{Topic: t.Topic, Partition: t.Partition, Offset: t.Offset})
	}
	a := auditor.Action{Actor: e.Actor, Origin: e.Origin, Verb: "erase", Resource: "order/" + e.OrderID,
		Outcome: auditor.OutcomeSuccess, Detail: e.Reason, Targets: out.Records}
	if out.Action, err = l.Record(ctx, a, e.OrderID); err != nil {
		return out, fmt.Errorf("erase: not logged, nothing erased: %w", err)
	}
	if err := l.store.EraseOrder(ctx, e.OrderID); err != nil {
		a.Outcome, a.Detail, a.TimeMs = auditor.OutcomeFailure, err.Error(), 0
		if _, lerr := l.Record(ctx, a, e.OrderID); lerr != nil {
			err = errors.Join(err, lerr)
		}
		return out, err
	}
	return out, nil
}
