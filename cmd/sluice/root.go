package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes, as scripts see them. 2 for a wrong command line is the
// convention of getopt-style tools (grep, curl, diff), so a script can
// tell a typo, which will never succeed, from a failure worth retrying.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // the command line was wrong; nothing was done
)

// newRootCmd builds the command tree. Each subcommand lives in its own file
// as a newXxxCmd constructor and is listed here.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "sluice",
		Short: "A Kafka-compatible distributed commit log",
		Long: "Sluice is a distributed, replicated commit log that speaks the Apache Kafka\n" +
			"wire protocol: any Kafka client works against it unchanged.",
		// We print errors ourselves, once, in execute; cobra's own printing
		// would repeat them and dump the whole usage text on every failure.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.AddCommand(
		newServeCmd(),
		newTopicCmd(),
		newProduceCmd(),
		newConsumeCmd(),
		newGroupCmd(),
		newACLCmd(),
		newClusterCmd(),
		newQuotaCmd(),
		newDevCmd(),
		newBenchCmd(),
		newProfileCmd(),
		newUserCmd(),
		newVersionCmd(),
	)
	registerFlagCompletions(root)
	return root
}

// run executes the sluice command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetIn(stdin)
	return execute(ctx, root, args, stdout, stderr)
}

// execute runs root with args and maps the outcome to an exit code, writing
// any error to stderr.
func execute(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	markFailures(root)
	// A nil slice would make cobra read os.Args, which in tests are the test
	// binary's flags.
	root.SetArgs(append([]string{}, args...))
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "sluice: %v\n", err)
	code := exitCode(err)
	if code == exitUsage {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// usageError is returned by command code that finds its command line wrong
// in a way cobra cannot check (say, two flags that conflict), so the exit
// code is 2 like cobra's own usage errors.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usageErrorf formats a usageError.
func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// noArgs is cobra.NoArgs with a message that fits subcommands too: cobra's
// says "unknown command" for any stray argument.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasAvailableSubCommands() {
		// A command group (topic, group, cluster, ...): the argument is a
		// mistyped subcommand, so say which ones come close, as cobra
		// does only for the root's own subcommands.
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only on the root
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if near := cmd.SuggestionsFor(args[0]); len(near) > 0 {
			msg += "; did you mean " + strings.Join(near, " or ") + "?"
		}
		return usageErrorf("%s", msg)
	}
	return usageErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
}

// failure marks an error that came out of our own command code rather than
// out of cobra's parsing.
type failure struct{ err error }

func (e failure) Error() string { return e.err.Error() }
func (e failure) Unwrap() error { return e.err }

// exitCode classifies err. Cobra does not type its errors (unknown command,
// unknown flag, bad arguments and missing required flags are all plain
// errors), so the split is made the other way round: anything our own hooks
// returned is a failure, and everything else came from parsing the command
// line.
func exitCode(err error) int {
	var usage usageError
	var fail failure
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usage):
		return exitUsage
	case errors.As(err, &fail):
		return exitError
	default:
		return exitUsage
	}
}

// markFailures wraps the error-returning hooks of cmd and its subcommands so
// that their errors are marked as failures; see exitCode.
func markFailures(cmd *cobra.Command) {
	cmd.PersistentPreRunE = asFailure(cmd.PersistentPreRunE)
	cmd.PreRunE = asFailure(cmd.PreRunE)
	cmd.RunE = asFailure(cmd.RunE)
	cmd.PostRunE = asFailure(cmd.PostRunE)
	cmd.PersistentPostRunE = asFailure(cmd.PersistentPostRunE)
	for _, sub := range cmd.Commands() {
		markFailures(sub)
	}
}

type hook = func(cmd *cobra.Command, args []string) error

// asFailure marks f's errors as failures unless f already chose: a hook
// that returns a usageError keeps exit code 2.
func asFailure(f hook) hook {
	if f == nil {
		return nil
	}
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		var usage usageError
		var fail failure
		if err == nil || errors.As(err, &usage) || errors.As(err, &fail) {
			return err
		}
		return failure{err}
	}
}
