package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/alerts"
	"github.com/weft-sh/weft/dashboards"
)

// newDashboardsCmd is `weft dashboards generate|push`.
func newDashboardsCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dashboards",
		Short: "Generate weft's Grafana dashboards, or push them to Grafana",
		Long: `weft's seven Grafana dashboards (commerce overview, BOPIS flow, async payments,
queue health, consistency, audit trail, order drill-down) are generated from the config:
its ClickHouse database, its workflows and its dead-letter pattern. They use the
grafana-clickhouse-datasource plugin and a Prometheus data source.`,
	}
	cmd.AddCommand(newDashboardsGenerateCmd(g), newDashboardsPushCmd(g))
	return cmd
}

// dashboardOptions derives the dashboards' options from weft's config.
func dashboardOptions(c Config) dashboards.Options {
	o := dashboards.DefaultOptions()
	o.Database = c.ClickHouse.Database
	if o.Database == "" {
		o.Database = "weft"
	}
	o.Workflows = c.Consistency.AllWorkflows()
	if p := c.Collector.Lag.DLQPattern; p != "" {
		o.DLQPattern = p
	}
	return o
}

func newDashboardsGenerateCmd(g *globalFlags) *cobra.Command {
	var out, dashPath, grafanaCH, passwordEnv, promUID string
	cmd := &cobra.Command{
		Use:   "generate --out DIR",
		Short: "Write the dashboards' JSON and Grafana provisioning files to DIR",
		Long: `Writes DIR/dashboards/<uid>.json and Grafana provisioning files:
DIR/provisioning/dashboards/weft.yaml (a file provider putting the dashboards in
the "weft" folder) and DIR/provisioning/datasources/weft.yaml (the ClickHouse
data source, password read by Grafana from an environment variable).`,
		Example: `  weft dashboards generate --out grafana -c weft.yaml
  weft dashboards generate --out grafana --grafana-clickhouse clickhouse:9000 --dashboards-path /var/lib/grafana/dashboards/weft`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{fmt.Errorf("--out is required")}
			}
			c, err := g.load()
			if err != nil {
				return err
			}
			opts := dashboardOptions(c)
			ds, err := dashboards.All(opts)
			if err != nil {
				return err
			}
			addr := grafanaCH
			if addr == "" && len(c.ClickHouse.Addr) > 0 {
				addr = c.ClickHouse.Addr[0]
			}
			host, portStr, err := net.SplitHostPort(addr)
			if err != nil {
				return usageError{fmt.Errorf("--grafana-clickhouse %q: want host:port", addr)}
			}
			port, err := strconv.Atoi(portStr)
			if err != nil {
				return usageError{fmt.Errorf("--grafana-clickhouse %q: bad port", addr)}
			}
			user := c.ClickHouse.Username
			if user == "" {
				user = "default"
			}
			written, err := dashboards.Provisioning{
				Dir: out, DashboardsPath: dashPath,
				DataSource: dashboards.DataSource{Host: host, Port: port, Username: user,
					PasswordEnv: passwordEnv, Secure: c.ClickHouse.TLS.Enabled},
			}.Write(ds, opts)
			if err != nil {
				return err
			}
			if promUID != "" {
				groups, err := alerts.Rules(alertOptions(c))
				if err != nil {
					return err
				}
				p, err := writeGrafanaAlerting(filepath.Join(out, "provisioning", "alerting", "weft.yaml"), groups, promUID)
				if err != nil {
					return err
				}
				written = append(written, p)
			}
			w := cmd.OutOrStdout()
			for _, p := range written {
				fmt.Fprintln(w, p)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "directory to write to (created if missing)")
	f.StringVar(&dashPath, "dashboards-path", "", "where Grafana reads DIR/dashboards (default: its absolute path here)")
	f.StringVar(&grafanaCH, "grafana-clickhouse", "", "ClickHouse native host:port as Grafana reaches it (default: clickhouse.addr)")
	f.StringVar(&promUID, "prometheus-uid", "", "also write provisioning/alerting/weft.yaml: weft's alert rules as Grafana-managed rules on this Prometheus data source UID")
	f.StringVar(&passwordEnv, "password-env", "WEFT_CLICKHOUSE_PASSWORD", "environment variable of Grafana holding the ClickHouse password (\"\" for none)")
	return cmd
}

func newDashboardsPushCmd(g *globalFlags) *cobra.Command {
	var url, token string
	cmd := &cobra.Command{
		Use:   "push --grafana-url URL --token TOKEN",
		Short: "Create or update the dashboards in Grafana through its HTTP API",
		Long: `Creates the "weft" folder when missing and saves every dashboard into it,
replacing the dashboards with the same UIDs. The token is a Grafana service
account token with Editor rights; GRAFANA_TOKEN is read when --token is not given.
The ClickHouse data source is not created: provision it (weft dashboards
generate) or add a grafana-clickhouse-datasource data source by hand.`,
		Example: `  GRAFANA_TOKEN=glsa_… weft dashboards push --grafana-url https://grafana.example.com -c weft.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				return usageError{fmt.Errorf("--grafana-url is required")}
			}
			if token == "" {
				token = os.Getenv("GRAFANA_TOKEN")
			}
			if token == "" {
				return usageError{dashboards.ErrNoToken}
			}
			c, err := g.load()
			if err != nil {
				return err
			}
			opts := dashboardOptions(c)
			ds, err := dashboards.All(opts)
			if err != nil {
				return err
			}
			if err := (dashboards.Pusher{URL: url, Token: token}).Push(cmd.Context(), ds, opts); err != nil {
				return err
			}
			for _, d := range ds {
				fmt.Fprintf(cmd.OutOrStdout(), "%s/d/%s  %s\n", url, d.UID, d.Title)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "grafana-url", "", "Grafana's base URL, e.g. https://grafana.example.com")
	cmd.Flags().StringVar(&token, "token", "", "Grafana service account token (default $GRAFANA_TOKEN)")
	return cmd
}
