package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/internal/chstore"
)

// exitSchemaPending is `weft migrate --check`'s exit code when a migration
// is pending (1 is any other failure: ClickHouse unreachable, a bad config).
const exitSchemaPending = 3

// MigrateReport is the answer of `weft migrate`: what it applied, and what
// is still pending (nothing, after a successful run; with --check, what a
// run would apply), by node.
type MigrateReport struct {
	Database string           `json:"database"`
	Applied  []NodeMigrations `json:"applied"`
	Pending  []NodeMigrations `json:"pending"`
}

// NodeMigrations are migrations of one ClickHouse node, by file name.
type NodeMigrations struct {
	Node       string   `json:"node"`
	Migrations []string `json:"migrations"`
}

func newMigrateCmd(g *globalFlags) *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply weft's pending ClickHouse schema migrations, once",
		Long: `migrate applies the schema migrations this weft embeds that ClickHouse has
not applied yet (clickhouse section of the config), on every node of
clickhouse.cluster, or on the one server. It prints one line per node it
changed and says when the schema is current. Running it again applies
nothing.

With clickhouse.migrate: external, weft run applies no migration and refuses
to start while one is pending: run this once before the new version rolls
out (the Helm chart's pre-install/pre-upgrade Job does; docs/deploy.md).

--check applies nothing: it lists the pending migrations and exits 3 when
there are any, 0 when the schema is current (for CI and probes). A
ClickHouse that does not answer exits 1.`,
		Example: "  weft migrate -c weft.yaml\n  weft migrate -c weft.yaml --check",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			return runMigrate(cmd.Context(), g, cmd.OutOrStdout(), cfg.ClickHouse, check)
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "apply nothing: list pending migrations, exit 3 if there are any")
	return cmd
}

func runMigrate(ctx context.Context, g *globalFlags, w io.Writer, c chstore.Config, check bool) error {
	store, err := chstore.Open(ctx, c)
	if err != nil {
		return err
	}
	defer store.Close()
	rep := MigrateReport{Database: c.Database, Applied: []NodeMigrations{}}
	before, err := store.Pending(ctx)
	if err != nil {
		return fmt.Errorf("clickhouse schema: %w", err)
	}
	rep.Pending = byNode(before)
	var migrateErr error
	if !check {
		if len(before) > 0 {
			migrateErr = store.Migrate(ctx)
		}
		// Asked again after a failure too: what a run stopped half-way
		// through a cluster did apply is worth a line per node.
		after, err := store.Pending(ctx)
		if err != nil {
			return fmt.Errorf("clickhouse schema: %w", errors.Join(migrateErr, err))
		}
		rep.Applied = byNode(appliedBetween(before, after))
		rep.Pending = byNode(after)
	}
	if err := g.emit(w, rep, func(w io.Writer) { rep.text(w, check) }); err != nil {
		return err
	}
	if migrateErr != nil {
		return fmt.Errorf("clickhouse schema: %w", migrateErr)
	}
	if len(rep.Pending) > 0 {
		err := fmt.Errorf("%w: %d migration(s) pending on %d node(s)", chstore.ErrSchemaPending, count(rep.Pending), len(rep.Pending))
		if check {
			return codeError{fmt.Errorf("%w: run `weft migrate`", err), exitSchemaPending}
		}
		// Migrate returned nil yet something is left: not ours to hide.
		return fmt.Errorf("%w after weft migrate", err)
	}
	return nil
}

// text writes one line per node that has (or had) migrations to apply,
// then whether the schema is current.
func (r MigrateReport) text(w io.Writer, check bool) {
	verb, list := "applied", r.Applied
	if check {
		verb, list = "pending", r.Pending
	}
	for _, n := range list {
		fmt.Fprintf(w, "clickhouse %s: %s %d migration(s): %s\n", n.Node, verb, len(n.Migrations), strings.Join(n.Migrations, ", "))
	}
	if len(r.Pending) == 0 {
		if len(r.Applied) == 0 {
			fmt.Fprintf(w, "database %s: schema current on every node, nothing to apply\n", r.Database)
		} else {
			fmt.Fprintf(w, "database %s: schema current on every node\n", r.Database)
		}
	}
}

// byNode groups migrations by node, in the order they come.
func byNode(ms []chstore.PendingMigration) []NodeMigrations {
	out := []NodeMigrations{}
	at := map[string]int{}
	for _, m := range ms {
		i, ok := at[m.Node]
		if !ok {
			i = len(out)
			at[m.Node] = i
			out = append(out, NodeMigrations{Node: m.Node})
		}
		out[i].Migrations = append(out[i].Migrations, m.Name)
	}
	return out
}

func count(ns []NodeMigrations) int {
	n := 0
	for _, m := range ns {
		n += len(m.Migrations)
	}
	return n
}

// appliedBetween is what was pending before and no longer is.
func appliedBetween(before, after []chstore.PendingMigration) []chstore.PendingMigration {
	left := map[chstore.PendingMigration]bool{}
	for _, m := range after {
		left[m] = true
	}
	var out []chstore.PendingMigration
	for _, m := range before {
		if !left[m] {
			out = append(out, m)
		}
	}
	return out
}

// prepareSchema readies the store's schema for a command, as
// clickhouse.migrate says: startup applies what is pending; external leaves
// that to `weft migrate` (so that replicas never race) and fails, saying
// so, while a migration is pending.
func prepareSchema(ctx context.Context, store *chstore.Store, c chstore.Config) error {
	if c.Migrate == chstore.MigrateExternal {
		if err := store.CheckSchema(ctx); err != nil {
			return fmt.Errorf("clickhouse.migrate is external: %w", err)
		}
		return nil
	}
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("clickhouse schema: %w", err)
	}
	return nil
}
