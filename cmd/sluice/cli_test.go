package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runCLI runs the sluice command line in-process with empty stdin.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLIInput(t, "", args...)
}

// runCLIInput runs the sluice command line in-process with stdin as its
// standard input, bounded by cliTestTimeout so a command that follows a
// topic forever cannot hang the test.
func runCLIInput(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTestTimeout)
	defer cancel()
	return runCLIContext(ctx, stdin, args...)
}

// runCLIContext runs the command line until it exits or ctx ends (as
// Ctrl-C would end it).
func runCLIContext(ctx context.Context, stdin string, args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	code = run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

func requireCode(t *testing.T, got, want int, stderr string) {
	t.Helper()
	if got != want {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", got, want, stderr)
	}
}

func TestCLIVersionText(t *testing.T) {
	stdout, stderr, code := runCLI(t, "version")
	requireCode(t, code, exitOK, stderr)
	if !strings.HasPrefix(stdout, "sluice version ") || !strings.Contains(stdout, runtime.Version()) {
		t.Fatalf("stdout = %q, want the version line with %s", stdout, runtime.Version())
	}
	if stderr != "" {
		t.Fatalf("stderr = %q, want nothing", stderr)
	}
}

func TestCLIVersionJSON(t *testing.T) {
	stdout, stderr, code := runCLI(t, "version", "--json")
	requireCode(t, code, exitOK, stderr)
	var got map[string]string
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	for _, key := range []string{"version", "commit", "go_version", "platform"} {
		if got[key] == "" {
			t.Errorf("JSON lacks %q: %s", key, stdout)
		}
	}
	if got["go_version"] != runtime.Version() {
		t.Errorf("go_version = %q, want %q", got["go_version"], runtime.Version())
	}
}

func TestCLIBuildVersionSources(t *testing.T) {
	stamped := &debug.BuildInfo{
		Main: debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc123"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	devel := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
	cases := []struct {
		name                 string
		ldVersion, ldCommit  string
		info                 *debug.BuildInfo
		wantVersion, wantSHA string
	}{
		{"ldflags win", "v9.9.9", "fff", stamped, "v9.9.9", "fff"},
		{"build info", "", "", stamped, "v1.2.3", "abc123-dirty"},
		{"devel build", "", "", devel, "dev", "unknown"},
		{"no build info", "", "", nil, "dev", "unknown"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			read := func() (*debug.BuildInfo, bool) { return tc.info, tc.info != nil }
			b := resolveBuild(tc.ldVersion, tc.ldCommit, read)
			if b.Version != tc.wantVersion || b.Commit != tc.wantSHA {
				t.Fatalf("got %s/%s, want %s/%s", b.Version, b.Commit, tc.wantVersion, tc.wantSHA)
			}
		})
	}
}

func TestCLIHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {}} {
		stdout, stderr, code := runCLI(t, args...)
		requireCode(t, code, exitOK, stderr)
		if !strings.Contains(stdout, "Kafka") || !strings.Contains(stdout, "version") {
			t.Fatalf("sluice %v printed %q, want the help text listing commands", args, stdout)
		}
	}
}

func TestCLIUsageErrorsExitTwo(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "sluice"`},
		{[]string{"versoin"}, "Did you mean this?"},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"version", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"version", "extra"}, `sluice version takes no arguments, got ["extra"]`},
	}
	for _, tc := range cases {
		stdout, stderr, code := runCLI(t, tc.args...)
		requireCode(t, code, exitUsage, stderr)
		if !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "--help' for usage") {
			t.Errorf("sluice %v: stderr = %q, want it to mention %q and --help", tc.args, stderr, tc.want)
		}
		if stdout != "" {
			t.Errorf("sluice %v: usage error wrote to stdout: %q", tc.args, stdout)
		}
	}
}

// TestCLICommandErrorsExitOne checks the classification that future
// subcommands rely on: an error from command code is a failure (1) unless it
// is explicitly a usage error (2).
func TestCLICommandErrorsExitOne(t *testing.T) {
	cases := []struct {
		err  error
		code int
	}{
		{errors.New("disk on fire"), exitError},
		{usageErrorf("--a and --b conflict"), exitUsage},
		{nil, exitOK},
	}
	for _, tc := range cases {
		root := newRootCmd()
		root.AddCommand(&cobra.Command{
			Use:  "fail",
			RunE: func(*cobra.Command, []string) error { return tc.err },
		})
		var out, errOut bytes.Buffer
		code := execute(context.Background(), root, []string{"fail"}, &out, &errOut)
		requireCode(t, code, tc.code, errOut.String())
		if tc.err != nil && !strings.Contains(errOut.String(), "sluice: "+tc.err.Error()) {
			t.Errorf("stderr = %q, want the error", errOut.String())
		}
	}
}

// TestCLIEveryCommandHasExamples walks the command tree: every command a
// user can run shows examples in its --help.
func TestCLIEveryCommandHasExamples(t *testing.T) {
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		if cmd.Example == "" && cmd.HasParent() {
			t.Errorf("%s has no Example in its help", cmd.CommandPath())
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
}

// TestCLIExamplesParse runs every example in every command's help far
// enough to check its command line, so an example cannot keep a flag that
// was renamed or whose old use is now refused (produce -k :, consume
// -o json, add-partitions -n). A client command runs against a dead broker
// and must fail to reach it (exit 1), not on its usage (exit 2); for the
// others, which would start servers, the flags are parsed.
func TestCLIExamplesParse(t *testing.T) {
	dead := deadBroker(t)
	// No example may read or write the profiles of whoever runs the tests.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv(profileEnv, "")
	checked := 0
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, line := range strings.Split(cmd.Example, "\n") {
			words := exampleWords(line)
			if len(words) == 0 {
				continue
			}
			checked++
			// A fresh tree per example: parsing leaves values behind.
			found, rest, err := newRootCmd().Find(words[1:])
			switch {
			case err != nil:
			case hasFlag(found, "brokers") && hasFlag(found, "timeout"): // a client command, not profile create
				args := append(words[1:], "--brokers", dead, "--timeout", "2s")
				if _, stderr, code := runCLI(t, args...); code == exitUsage {
					err = errors.New(strings.TrimSpace(stderr))
				}
			default:
				err = found.ParseFlags(rest)
			}
			if err != nil {
				t.Errorf("%s example %q: %v", cmd.CommandPath(), strings.TrimSpace(line), err)
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	if checked < 20 {
		t.Fatalf("checked %d examples; the walk is not finding them", checked)
	}
}

func hasFlag(cmd *cobra.Command, name string) bool {
	return cmd.Flags().Lookup(name) != nil || cmd.PersistentFlags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil
}

// exampleWords splits the sluice command of one example line into words as
// a shell would (single and double quotes), dropping what is piped into it
// and what it pipes to;
// it returns nil for comments and lines without a sluice command.
func exampleWords(line string) []string {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "#") {
		return nil
	}
	at := strings.Index(line, "sluice ")
	if at < 0 || (at > 0 && !strings.HasSuffix(strings.TrimSpace(line[:at]), "|")) {
		return nil
	}
	var words []string
	var word strings.Builder
	inWord := false
	var quote byte
	for i := at; i < len(line); i++ {
		c := line[i]
		if quote == 0 && (c == '|' || c == '>') {
			break // what follows is another command or a file
		}
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			word.WriteByte(c)
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// TestCLISuggestsSubcommands: a mistyped subcommand of a command group is
// named as unknown with the close ones suggested, not "takes no arguments".
func TestCLISuggestsSubcommands(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"topic", "craete", "x"}, `unknown command "craete" for "sluice topic"; did you mean create?`},
		{[]string{"group", "descrbe"}, `unknown command "descrbe" for "sluice group"; did you mean describe?`},
		{[]string{"cluster", "zzz"}, `unknown command "zzz" for "sluice cluster"`},
	} {
		_, stderr, code := runCLI(t, tc.args...)
		requireCode(t, code, exitUsage, stderr)
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: stderr %q, want %q", tc.args, stderr, tc.want)
		}
	}
}

// TestCLIJSONListsAreNeverNull runs the list-shaped commands against an
// empty broker: every list in their --json is [], so `jq '.[]'` and
// `length` work without a null check.
func TestCLIJSONListsAreNeverNull(t *testing.T) {
	isolateProfiles(t)
	addr := startBroker(t)
	for _, args := range [][]string{
		{"topic", "list"},
		{"group", "list"},
		{"group", "describe", "--all"},
		{"cluster", "elect-leaders", "--all"},
		{"profile", "list"},
		{"topic", "create", "orders", "-p", "1"},
		{"topic", "alter-config", "orders", "--set", "retention.ms=60000"},
		{"topic", "delete", "orders"},
		{"quota", "describe"},
	} {
		if args[0] != "profile" {
			args = append(args, "--brokers", addr)
		}
		out, stderr, code := runCLI(t, append(args, "--json")...)
		requireCode(t, code, exitOK, stderr)
		if !json.Valid([]byte(out)) || strings.Contains(out, "null") {
			t.Errorf("%v --json on an empty broker:\n%s", args, out)
		}
	}
}

func TestCLIPrintJSONEmptyLists(t *testing.T) {
	type inner struct {
		IDs  []int32           `json:"ids"`
		Tags map[string]string `json:"tags"`
	}
	type doc struct {
		Items   []inner          `json:"items"`
		Nested  inner            `json:"nested"`
		Ptr     *inner           `json:"ptr"`
		Missing *string          `json:"missing"`
		ByName  map[string][]int `json:"by_name"`
		Raw     []byte           `json:"raw"`
		Any     any              `json:"any"`
	}
	var b bytes.Buffer
	v := doc{Ptr: &inner{}, ByName: map[string][]int{"a": nil}, Any: []string(nil), Items: []inner{{}}}
	if err := printJSON(&b, v); err != nil {
		t.Fatal(err)
	}
	want := `{"items":[{"ids":[],"tags":{}}],"nested":{"ids":[],"tags":{}},"ptr":{"ids":[],"tags":{}},"missing":null,"by_name":{"a":[]},"raw":null,"any":[]}`
	var compact bytes.Buffer
	if err := json.Compact(&compact, b.Bytes()); err != nil || compact.String() != want {
		t.Fatalf("printJSON = %s (%v)\nwant %s", compact.String(), err, want)
	}
	if v.Ptr.IDs != nil || v.ByName["a"] != nil {
		t.Error("printJSON changed the value it printed")
	}
	for _, v := range []any{nil, []string(nil), map[string][]string{"deleted": nil}} {
		b.Reset()
		if err := printJSON(&b, v); err != nil || (v != nil && strings.Contains(b.String(), "null")) {
			t.Errorf("printJSON(%#v) = %s (%v)", v, b.String(), err)
		}
	}
}
