package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/node"
	"github.com/sluicelog/sluice/internal/vfs"
)

// shutdownGrace bounds how long a stopping node waits for requests already
// read to be answered. Thirty seconds covers a long-poll fetch (fetch.max.
// wait.ms is 500 ms by default, but clients may ask for more) and the
// controlled shutdown's own bound, and stays under the 90 s a systemd unit
// waits before it sends SIGKILL.
const shutdownGrace = 30 * time.Second

func newServeCmd() *cobra.Command {
	var (
		dataDir, listen, configFile string
		sets                        []string
		logLevel                    string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Sluice node (broker and controller)",
		Long: "Run a Sluice node. With no flags it is a cluster of one: broker and controller,\n" +
			"data in ./data, Kafka clients on localhost:9092.\n\n" +
			"Configuration uses Kafka's key names. Precedence: flags (--set, --data-dir,\n" +
			"--listen) > SLUICE_* environment variables (SLUICE_LOG_RETENTION_HOURS=1 sets\n" +
			"log.retention.hours) > --config file (server.properties) > defaults.",
		Example: "  sluice serve\n" +
			"  sluice serve --data-dir /var/lib/sluice --listen 0.0.0.0:9092\n" +
			"  sluice serve --config server.properties --set log.retention.hours=1\n" +
			"  SLUICE_NUM_PARTITIONS=3 sluice serve",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Only flags given on the command line count: their defaults
			// are the config defaults, which a file or env var may override.
			flags := map[string]string{}
			if cmd.Flags().Changed("data-dir") {
				flags["log.dirs"] = dataDir
			}
			if cmd.Flags().Changed("listen") {
				flags["listeners"] = "PLAINTEXT://" + listen
			}
			return serve(cmd.Context(), config.Sources{File: configFile, Env: os.Environ(), Sets: sets, Flags: flags},
				logLevel, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "data", "directory for partition logs and metadata (log.dirs)")
	// localhost, not all interfaces: a laptop's `sluice serve` must not be
	// reachable from the network by accident; a server says --listen
	// 0.0.0.0:9092 on purpose.
	cmd.Flags().StringVar(&listen, "listen", "localhost:9092", "HOST:PORT for Kafka clients (listeners); port 0 picks a free port")
	cmd.Flags().StringVar(&configFile, "config", "", "a Kafka server.properties file")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "set a config key, Kafka's name: --set log.retention.hours=1 (repeatable)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// serve loads the configuration, runs a node until ctx ends and stops it
// cleanly. A bad --log-level is checked before the config is read, so a
// typo is a usage error even when the config is also wrong.
func serve(ctx context.Context, src config.Sources, logLevel string, stderr interface{ Write([]byte) (int, error) }) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return usageErrorf("--log-level %q: want debug, info, warn or error", logLevel)
	}
	// Logs go to stderr, so stdout stays free for anything a wrapper
	// wants to parse, and service managers capture stderr anyway.
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, warnings, err := config.Load(vfs.OS(), src)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		logger.Warn(w)
	}
	// No deadline on the start: a node of a cluster waits for a majority of
	// its voters however long the others take to come up (and says so in
	// its log); Ctrl-C or SIGTERM ends the wait.
	n, err := node.Start(ctx, node.Options{Config: cfg, Logger: logger})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	// The one line scripts and tests wait for.
	if n.IsBroker() {
		fmt.Fprintf(stderr, "sluice: accepting Kafka clients on %s\n", n.Addr())
	} else {
		fmt.Fprintf(stderr, "sluice: controller %s ready (process.roles=controller: no Kafka clients here)\n", cfg.String("node.id"))
	}
	// ctx ends on SIGINT or SIGTERM (main's signal context). The stop
	// runs on a fresh context: the cancelled one would cut the graceful
	// shutdown short at once.
	<-ctx.Done()
	logger.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := n.Shutdown(stopCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped cleanly")
	return nil
}
