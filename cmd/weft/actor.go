package main

import (
	"context"
	"fmt"
	"os"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/collector"
	"github.com/weft-sh/weft/internal/chstore"
)

// cliActor is who runs a CLI command that writes, for the operator-actions
// log (docs/audit.md, "Operator actions"): the name given ($WEFT_USER, else
// the login name), and as origin "cli <login>@<host>" — the OS user and
// host, which a command that writes to ClickHouse directly has as its only
// identity, and says so by its origin.
func cliActor() (actor, origin string) {
	actor = currentUser()
	if actor == "" {
		actor = "unknown"
	}
	login := osUser()
	if login == "" {
		login = "unknown"
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return actor, "cli " + login + "@" + host
}

// actionLog is the operator-actions log of cfg's audit trail, or nil when
// the trail is off (then actions are not logged, as nothing else is).
func actionLog(cfg Config, store *chstore.Store) (*collector.ActionLog, error) {
	audit, err := tapAudit(cfg.Audit)
	if err != nil || audit == nil {
		return nil, err
	}
	return collector.NewActionLog(*audit, store), nil
}

// logAction appends a to l (nothing when l is nil). Its error says that
// the action happened but is not logged.
func logAction(ctx context.Context, l *collector.ActionLog, a auditor.Action, orderID string) error {
	if l == nil {
		return nil
	}
	if _, err := l.Record(ctx, a, orderID); err != nil {
		return fmt.Errorf("%s %s: done, but not in the operator-actions log: %w", a.Verb, a.Resource, err)
	}
	return nil
}

// outcomeOf is an action's outcome and detail from the error that ended
// it.
func outcomeOf(err error, detail string) (auditor.Outcome, string) {
	if err != nil {
		return auditor.OutcomeFailure, err.Error()
	}
	return auditor.OutcomeSuccess, detail
}
