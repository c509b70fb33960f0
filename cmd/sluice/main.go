// Command sluice is the Sluice broker and its command-line tools, in one
// binary: `sluice serve` runs a node, the other subcommands talk to one.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Cancelled on Ctrl-C or SIGTERM, so long-running subcommands can shut
	// down in order instead of dying mid-write.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
