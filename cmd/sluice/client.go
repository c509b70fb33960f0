package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// defaultBrokers is where `sluice serve` listens with no flags.
const defaultBrokers = "localhost:9092"

// brokersEnv overrides a profile's brokers and defaultBrokers; --brokers
// overrides all of them.
const brokersEnv = "SLUICE_BROKERS"

// clientEnv holds what every command that talks to a cluster shares: where
// the brokers are, how long to wait for them, and how to print. Each
// top-level client command (topic, produce, consume, group, cluster, bench)
// registers these flags as persistent flags, so subcommands inherit them
// and `sluice serve` does not grow flags it cannot use.
type clientEnv struct {
	brokers string
	// profile and configFile are --profile and --config-file: where the
	// settings the command line leaves out come from.
	profile    string
	configFile string
	// flags is the flag set holding --brokers, to tell a --brokers typed
	// from its empty default; nil when the env is built by hand (tests),
	// and then brokers is used as it is.
	flags    *pflag.FlagSet
	resolved bool
	timeout  time.Duration
	asJSON   bool
	output   string
	// outputFlag is how --output is named in messages: "-o" where that
	// shorthand is registered, "--output" on consume, whose -o is the
	// offset as in kcat and rpk.
	outputFlag string
	// security is --tls, --sasl-mechanism and the rest; settings are the
	// profile's or --config-file's, kept by resolve for securityOpts.
	security securityFlags
	settings clientSettings
}

// newClientEnv returns a clientEnv whose flags are registered on cmd's
// persistent flag set.
func newClientEnv(cmd *cobra.Command) *clientEnv {
	e := &clientEnv{outputFlag: "-o"}
	e.register(cmd.PersistentFlags())
	return e
}

// newClientEnvWithoutO is newClientEnv without the -o shorthand for
// --output, for a command that gives -o another meaning.
func newClientEnvWithoutO(cmd *cobra.Command) *clientEnv {
	e := &clientEnv{outputFlag: "--output"}
	e.register(cmd.PersistentFlags())
	return e
}

func (e *clientEnv) register(fs *pflag.FlagSet) {
	e.flags = fs
	fs.StringVar(&e.brokers, "brokers", "", "comma-separated HOST:PORT seed brokers (default $"+brokersEnv+", else the profile's, else "+defaultBrokers+")")
	fs.StringVar(&e.profile, "profile", "", "client profile to use (default $"+profileEnv+", else the current one; see sluice profile)")
	fs.StringVarP(&e.configFile, "config-file", "F", "", "read client settings (bootstrap.servers=HOST:PORT,...) from this file, as kcat -F")
	// Ten seconds outlasts a controller election and a coordinator load
	// on a healthy cluster, yet a dead address still fails while the user
	// is watching.
	fs.DurationVar(&e.timeout, "timeout", 10*time.Second, "how long to wait for the cluster to answer")
	fs.BoolVar(&e.asJSON, "json", false, "print JSON for scripts (same as "+e.outputFlag+" json)")
	shorthand := ""
	if e.outputFlag == "-o" {
		shorthand = "o"
	}
	fs.StringVarP(&e.output, "output", shorthand, "text", "output format: text or json")
	e.security.register(fs)
}

// jsonOutput reports whether the command should print JSON, rejecting an
// unknown -o value as a usage error.
//
// --json and -o json (kubectl's spelling) both work; -o text does not
// cancel --json, since a user who typed --json meant it.
func (e *clientEnv) jsonOutput() (bool, error) {
	switch e.output {
	case "text", "":
		return e.asJSON, nil
	case "json":
		return true, nil
	}
	return false, usageErrorf("%s %q: want text or json", e.outputFlag, e.output)
}

// resolve settles where the brokers are: --brokers, else $SLUICE_BROKERS,
// else the --config-file or profile, else localhost:9092. A profile or
// file named on the command line is read even when --brokers is given, so
// a wrong name fails rather than being silently unused.
func (e *clientEnv) resolve() error {
	if e.resolved {
		return nil
	}
	if e.flags == nil {
		if e.brokers == "" {
			e.brokers = defaultBrokers
		}
		e.resolved = true
		return nil
	}
	settings, _, err := selectedSettings(e.profile, e.configFile)
	if err != nil {
		return err
	}
	e.resolved = true
	e.settings = settings
	// Changed, not a non-empty value: `--brokers ""` is a typed flag and
	// must fail in seeds as empty, not fall back to a profile's brokers.
	if f := e.flags.Lookup("brokers"); f != nil && f.Changed {
		return nil
	}
	e.brokers = defaultBrokers
	if v := strings.TrimSpace(os.Getenv(brokersEnv)); v != "" {
		e.brokers = v
	} else if settings.Brokers != "" {
		e.brokers = settings.Brokers
	}
	return nil
}

// seeds splits the brokers, refusing an empty list or a malformed address
// before any connection is tried.
func (e *clientEnv) seeds() ([]string, error) {
	if err := e.resolve(); err != nil {
		return nil, err
	}
	return parseSeeds(e.brokers)
}

// parseSeeds splits a comma-separated list of HOST:PORT addresses.
func parseSeeds(brokers string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(brokers, ",") {
		b = strings.TrimSpace(b)
		// A trailing comma (a list built by a script) is forgiven; an
		// empty list as a whole is not.
		if b == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(b); err != nil {
			return nil, usageErrorf("--brokers %q: want HOST:PORT: %v", b, err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, usageErrorf("--brokers is empty: want HOST:PORT[,HOST:PORT...]")
	}
	return out, nil
}

// client connects to the cluster and checks that a broker answers, so a
// command fails at once with a message naming the broker rather than
// retrying until its deadline. Close it when done.
func (e *clientEnv) client(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
	seeds, err := e.seeds()
	if err != nil {
		return nil, err
	}
	// --timeout bounds each phase the client would otherwise retry for
	// long (dial, retries, request); the ClientID names the CLI in broker
	// logs and quotas.
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("sluice-cli"),
		kgo.DialTimeout(e.timeout),
		kgo.RetryTimeout(e.timeout),
		kgo.RequestTimeoutOverhead(e.timeout),
	}
	security, err := e.securityOpts(e.settings)
	if err != nil {
		return nil, err
	}
	base = append(base, security...)
	// NewClient fails only on contradictory options, which come from the
	// command line, so it is a usage error.
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	if err := cl.Ping(pingCtx); err != nil {
		cl.Close()
		return nil, unreachable(e.brokers, err)
	}
	return cl, nil
}

// admin is client wrapped for admin requests. Close the admin client when
// done; it closes the underlying client.
func (e *clientEnv) admin(ctx context.Context) (*kadm.Client, error) {
	cl, err := e.client(ctx)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// adminSession is an admin client and a context bounded by --timeout for
// one command's requests; done releases both.
func (e *clientEnv) adminSession(ctx context.Context) (context.Context, *kadm.Client, func(), error) {
	adm, err := e.admin(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	rctx, cancel := e.requestContext(ctx)
	return rctx, adm, func() { cancel(); adm.Close() }, nil
}

// requestContext bounds one round of requests by --timeout.
func (e *clientEnv) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.timeout)
}

// unreachableError is a failure to reach any seed broker. Its message is
// the one a user can act on: which broker, what failed, and the likely fix.
type unreachableError struct {
	brokers string
	err     error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach %s: %s — is `sluice serve` running?", e.brokers, dialReason(e.err))
}

func (e *unreachableError) Unwrap() error { return e.err }

func unreachable(brokers string, err error) error {
	return &unreachableError{brokers: brokers, err: err}
}

// dialReason names the cause of a connection failure in a few words. The
// raw errors chain dial, syscall and address details that hide the one
// fact a user needs; anything not recognised is printed whole.
func dialReason(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.As(err, &dnsErr):
		return "unknown host " + dnsErr.Name
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "no answer (timed out)"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return err.Error()
}
