// Command weft is the observability sidecar and audit collector for
// event-driven commerce: `weft run` taps Kafka into ClickHouse and finds stuck
// orders; the other subcommands answer on-call questions.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		var ue usageError
		var ce codeError
		fmt.Fprintln(os.Stderr, "weft: "+err.Error())
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		if errors.As(err, &ce) {
			os.Exit(ce.code)
		}
		os.Exit(1)
	}
}

// usageError marks a command-line mistake (exit 2) as opposed to a failure (exit 1).
type usageError struct{ error }

// codeError is a failure with an exit code of its own (weft audit: 4 when
// evidence was found tampered).
type codeError struct {
	error
	code int
}

func (e codeError) Unwrap() error { return e.error }

// globalFlags are shared by every subcommand.
type globalFlags struct {
	configPath string
	brokers    []string
	clickhouse []string
	database   string
	output     string
	// otlpJSON lets --output be otlp-json (weft trace alone).
	otlpJSON bool
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "weft",
		Short: "Observability sidecar and audit collector for event-driven commerce",
		Long: `weft taps an existing Kafka cluster, stitches each order's events into a causal
chain in ClickHouse, and finds the orders that are stuck and why.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVarP(&g.configPath, "config", "c", os.Getenv("WEFT_CONFIG"), "config file (weft.yaml); env WEFT_CONFIG")
	pf.StringSliceVar(&g.brokers, "brokers", nil, "Kafka bootstrap brokers, overriding kafka.brokers")
	pf.StringSliceVar(&g.clickhouse, "clickhouse", nil, "ClickHouse native addresses, overriding clickhouse.addr")
	pf.StringVar(&g.database, "database", "", "ClickHouse database, overriding clickhouse.database")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	root.AddCommand(
		newRunCmd(g),
		newMigrateCmd(g),
		newStuckCmd(g),
		newOrderCmd(g),
		newTraceCmd(g),
		newFindingsCmd(g),
		newEventsCmd(g),
		newAckCmd(g),
		newLagCmd(g),
		newServicesCmd(g),
		newAuditCmd(g),
		newReplayCmd(g),
		newRedriveCmd(g),
		newAuthCmd(g),
		newDashboardsCmd(g),
		newAlertsCmd(g),
		newDevCmd(g),
		newDemoCmd(),
		newEmbeddedClickHouseCmd(),
		newClickHouseServerCmd(),
	)
	return root
}

// load reads the config and applies the command-line overrides.
func (g *globalFlags) load() (Config, error) {
	// Flags may fix what the file got wrong: validate after applying them.
	c, err := loadConfig(g.configPath)
	if err != nil {
		return Config{}, err
	}
	if len(g.brokers) > 0 {
		c.Kafka.Brokers = g.brokers
	}
	if len(g.clickhouse) > 0 {
		c.ClickHouse.Addr = g.clickhouse
	}
	if g.database != "" {
		c.ClickHouse.Database = g.database
	}
	if g.output == "otlp-json" && g.otlpJSON {
		return c, c.Validate()
	}
	if g.output != "text" && g.output != "json" {
		return Config{}, usageError{fmt.Errorf("--output %q: want text or json", g.output)}
	}
	return c, c.Validate()
}
