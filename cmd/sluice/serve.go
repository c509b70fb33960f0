package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
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
		httpListener, logFormat     string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Sluice node (broker and controller)",
		Long: "Run a Sluice node. With no flags it is a cluster of one: broker and controller,\n" +
			"data in ./data, Kafka clients on localhost:9092.\n\n" +
			"Configuration uses Kafka's key names. Precedence: flags (--set, --data-dir,\n" +
			"--listen, --http, --log-format) > SLUICE_* environment variables (SLUICE_LOG_RETENTION_HOURS=1 sets\n" +
			"log.retention.hours) > --config file (server.properties) > defaults.",
		Example: "  sluice serve\n" +
			"  sluice serve --data-dir /var/lib/sluice --listen 0.0.0.0:9092\n" +
			"  sluice serve --http 127.0.0.1:0 --log-format json\n" +
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
			if cmd.Flags().Changed("http") {
				flags[config.HTTPListener] = httpListener
			}
			if cmd.Flags().Changed("log-format") {
				flags[config.LogFormat] = logFormat
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
	cmd.Flags().StringVar(&httpListener, "http", config.DefaultHTTPListener,
		"HOST:PORT for /metrics, /healthz, /readyz and the console (http.listener); port 0 picks a free port, empty disables it")
	cmd.Flags().StringVar(&logFormat, "log-format", config.LogFormatText, "text or json (log.format)")
	return cmd
}

// serve loads the configuration, runs a node until ctx ends and stops it
// cleanly. A bad --log-level is checked before the config is read, so a
// typo is a usage error even when the config is also wrong.
func serve(ctx context.Context, src config.Sources, logLevel string, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return usageErrorf("--log-level %q: want debug, info, warn or error", logLevel)
	}
	cfg, warnings, err := config.Load(vfs.OS(), src)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.String(config.LogFormat), level)
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
	logStarted(logger, cfg, n)
	if a := n.HTTPAddr(); a != nil {
		// Before the ready line, so whoever waits for that one finds
		// this one written.
		what := "metrics, health"
		if n.IsBroker() && cfg.Bool(config.HTTPConsoleEnabled) {
			what = "console, metrics, health"
		}
		fmt.Fprintf(stderr, "sluice: serving HTTP (%s) on http://%s/\n", what, a)
	}
	// The one line scripts and tests wait for.
	if n.IsBroker() {
		// Each listener of several has its own line, before the ready
		// line (the first listener's), so a script that waited for that
		// one finds them all written.
		if listeners := n.Listeners(); len(listeners) > 1 {
			for _, l := range listeners {
				fmt.Fprintf(stderr, "sluice: listener %s on %s\n", l.Name, l.Addr)
			}
		}
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

// newLogger makes the broker's logger in log.format (validated by config).
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// logStarted is the one start-up line that says what runs where.
func logStarted(logger *slog.Logger, cfg *config.Broker, n *node.Node) {
	b := resolveBuild(version, commit, debug.ReadBuildInfo)
	attrs := []any{"version", b.Version, "commit", b.Commit, "node", cfg.String(config.NodeID), "cluster", n.ClusterID(),
		"roles", cfg.String(config.ProcessRoles), "data_dir", cfg.LogDir()}
	if a := n.Addr(); a != nil {
		attrs = append(attrs, "kafka", a.String())
	}
	if a := n.HTTPAddr(); a != nil {
		attrs = append(attrs, "http", a.String())
	}
	logger.Info("sluice started", attrs...)
}
