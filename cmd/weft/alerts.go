package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/alerts"
)

// newAlertsCmd is `weft alerts generate`.
func newAlertsCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Generate weft's Prometheus alert rules",
		Long: `weft's alert rules are generated from the config (its workflows' SLAs, the tap's
consumer group): stuck orders by workflow, step and reason; the oldest stuck order
past its workflow's SLAs; open findings by kind; and weft's own health (the tap,
ClickHouse inserts, the detector, queue-health sampling). Each has a severity, a
summary, a description and a runbook_url into docs/runbook.md.`,
	}
	cmd.AddCommand(newAlertsGenerateCmd(g))
	return cmd
}

func newAlertsGenerateCmd(g *globalFlags) *cobra.Command {
	o := alerts.DefaultOptions()
	var out, promUID string
	cmd := &cobra.Command{
		Use:   "generate --out DIR",
		Short: "Write a Prometheus rules file and a PrometheusRule manifest to DIR",
		Long: `Writes DIR/` + alerts.RulesFileName + ` (for Prometheus's rule_files) and
DIR/` + alerts.PrometheusRuleName + ` (a monitoring.coreos.com/v1 PrometheusRule for the
prometheus-operator), the same rules in both; with --grafana-prometheus-uid, also
DIR/grafana-alerting.yaml, Grafana-managed copies of them for Grafana's
provisioning/alerting/ (weft dashboards generate writes it beside the dashboards).`,
		Example: `  weft alerts generate --out prometheus -c weft.yaml
  weft alerts generate --out prometheus --job weft --grafana-url https://grafana.example.com --stuck-threshold 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{fmt.Errorf("--out is required")}
			}
			c, err := g.load()
			if err != nil {
				return err
			}
			o.Workflows = c.Consistency.AllWorkflows()
			if !cmd.Flags().Changed("tap-group") && c.Collector.Group != "" {
				o.TapGroup = c.Collector.Group
			}
			groups, err := alerts.Rules(o)
			if err != nil {
				return usageError{err}
			}
			written, err := alerts.Write(out, groups)
			if err != nil {
				return err
			}
			if promUID != "" {
				p, err := writeGrafanaAlerting(filepath.Join(out, "grafana-alerting.yaml"), groups, promUID)
				if err != nil {
					return err
				}
				written = append(written, p)
			}
			for _, p := range written {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "directory to write to (created if missing)")
	f.StringVar(&o.Job, "job", o.Job, "the Prometheus job weft is scraped under (WeftDown)")
	f.StringVar(&o.TapGroup, "tap-group", o.TapGroup, "the tap's consumer group (default: collector.group)")
	f.StringVar(&o.RunbookURL, "runbook-url", o.RunbookURL, "where docs/runbook.md is read; rules link its sections")
	f.StringVar(&promUID, "grafana-prometheus-uid", "", "also write Grafana-managed rules querying this Prometheus data source UID")
	f.StringVar(&o.DashboardURL, "grafana-url", "", "Grafana's base URL: rules link the consistency dashboard")
	f.IntVar(&o.StuckThreshold, "stuck-threshold", o.StuckThreshold, "WeftOrdersStuck fires above this many orders of one workflow, step and reason")
	f.DurationVar(&o.StuckFor, "stuck-for", o.StuckFor, "for how long they must stay stuck first")
	f.Float64Var(&o.SLAFactor, "sla-factor", o.SLAFactor, "WeftStuckOrderPastSLA fires when the oldest stuck order is this many times its workflow's longest SLA")
	f.IntVar(&o.FindingsThreshold, "findings-threshold", o.FindingsThreshold, "WeftFindingsOpen fires above this many open gap or orphan findings of a kind")
	return cmd
}

// alertOptions are the default alert options for config c.
func alertOptions(c Config) alerts.Options {
	o := alerts.DefaultOptions()
	o.Workflows = c.Consistency.AllWorkflows()
	if c.Collector.Group != "" {
		o.TapGroup = c.Collector.Group
	}
	return o
}

// writeGrafanaAlerting writes the Grafana-managed copies of groups to path.
func writeGrafanaAlerting(path string, groups []alerts.Group, promUID string) (string, error) {
	b, err := alerts.GrafanaRules(groups, alerts.GrafanaOptions{PrometheusUID: promUID})
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}
