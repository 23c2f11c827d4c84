package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog/log"
	"github.com/spf13/cobra"

	"github.com/weft-sh/weft/internal/embedch"
)

// newEmbeddedClickHouseCmd is the hidden child process that embedch.Start
// spawns: it loads the ClickHouse engine and serves until killed.
func newEmbeddedClickHouseCmd() *cobra.Command {
	return &cobra.Command{
		Use:                embedch.ChildCommand,
		Short:              "Serve ClickHouse from the chDB engine library (internal; spawned by weft)",
		Hidden:             true,
		DisableFlagParsing: true, // the flags are embedch.ChildArgs'
		SilenceUsage:       true,
		RunE: func(_ *cobra.Command, args []string) error {
			lib, o, err := embedch.ParseChildArgs(args)
			if err != nil {
				return err
			}
			return embedch.Serve(lib, o)
		},
	}
}

// newClickHouseServerCmd runs the embedded ClickHouse in the foreground.
func newClickHouseServerCmd() *cobra.Command {
	var (
		dataDir, lib, cacheDir, registry, logLevel string
		tcpPort, httpPort                          int
		cluster                                    embedch.Cluster
	)
	cmd := &cobra.Command{
		Use:   "clickhouse-server",
		Short: "Run an embedded ClickHouse server on 127.0.0.1 until interrupted",
		Long: `Runs ClickHouse ` + "(chDB " + embedch.Version + `) in a child process, listening on 127.0.0.1
only and without authentication. On first use the engine library (about 170 MB
to download, 570 MB on disk) is fetched from the npm registry into the cache
directory and checked against a pinned sha256. Data is kept in --data-dir from
one run to the next, with ClickHouse's own log (clickhouse-server.log and
clickhouse-server.err.log). If the server dies it is restarted on the same data
and ports, with one line saying how it died; after 5 deaths in a row within a
minute of starting, this command gives up and exits 1. Stop it with Ctrl-C or
SIGTERM.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if dataDir == "" {
				d, err := defaultDataDir()
				if err != nil {
					return err
				}
				dataDir = d
			}
			if lib == "" {
				var err error
				lib, err = embedch.Fetch(ctx, embedch.FetchOptions{CacheDir: cacheDir, RegistryURL: registry, Progress: cmd.ErrOrStderr()})
				if err != nil {
					return err
				}
			}
			srv, err := embedch.Supervise(ctx, embedch.SuperviseOptions{Options: embedch.Options{
				LibPath: lib, DataDir: dataDir, TCPPort: tcpPort, HTTPPort: httpPort, Logger: log.Logger, LogLevel: logLevel,
				Cluster: cluster,
			}})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "ClickHouse is listening: native %s, http://%s\n", srv.Addr(), srv.HTTPAddr())
			fmt.Fprintf(out, "data: %s\nlog:  %s\nPress Ctrl-C to stop.\n", srv.DataDir(), srv.ServerLog())
			select {
			case <-ctx.Done():
			case <-srv.Done(): // it kept dying: restarted, then given up on
				return srv.Err()
			}
			fmt.Fprintln(out, "stopping ClickHouse")
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "data directory (default $XDG_DATA_HOME/weft/clickhouse or ~/.local/share/weft/clickhouse)")
	f.IntVar(&tcpPort, "tcp-port", 9000, "native protocol port on 127.0.0.1 (0 picks a free one)")
	f.IntVar(&httpPort, "http-port", 8123, "HTTP port on 127.0.0.1 (0 picks a free one)")
	f.StringVar(&logLevel, "log-level", embedch.DefaultLogLevel, "level of ClickHouse's log, clickhouse-server.log in the data directory (warning, information, debug, trace)")
	f.StringVar(&cluster.Name, "cluster", "", "make this server one shard of the named cluster (remote_servers), for weft's clickhouse.cluster")
	f.StringSliceVar(&cluster.Shards, "cluster-shard", nil, "native address (127.0.0.1:port) of a shard of --cluster, this server's among them; repeat for each")
	f.StringVar(&lib, "lib", "", "use this libchdb.so instead of fetching the pinned one")
	f.StringVar(&cacheDir, "cache-dir", "", "where the engine library is cached (default $"+embedch.EnvCacheDir+", else the user cache directory/weft)")
	f.StringVar(&registry, "registry", "", "npm registry URL (default $"+embedch.EnvRegistryURL+", else "+embedch.DefaultRegistryURL+")")
	return cmd
}

func defaultDataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "weft", "clickhouse"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", errors.New("no home directory: pass --data-dir")
	}
	return filepath.Join(home, ".local", "share", "weft", "clickhouse"), nil
}
