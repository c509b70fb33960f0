package main

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCompleteTopicsOffersTheClustersTopics(t *testing.T) {
	addr := startBroker(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 1, -1, nil, "orders", "ops", "payments"); err != nil {
		t.Fatal(err)
	}
	e := &clientEnv{brokers: addr, timeout: time.Second}
	cmd := &cobra.Command{}
	cmd.SetContext(ctx)
	got, directive := completeTopics(e)(cmd, []string{"ops"}, "o")
	if strings.Join(got, ",") != "orders" {
		t.Errorf("completing %q after ops offered %q, want orders", "o", got)
	}
	if directive != cobra.ShellCompDirectiveNoFileComp {
		t.Errorf("directive %v, want NoFileComp", directive)
	}
	got, _ = completeTopics(e)(cmd, nil, "__")
	for _, name := range got {
		if !strings.HasPrefix(name, "__") {
			t.Errorf("completing %q offered %q", "__", got)
		}
	}
}

func TestCompleteOffersNothingWithoutABroker(t *testing.T) {
	e := &clientEnv{brokers: deadBroker(t), timeout: time.Second}
	cmd := &cobra.Command{}
	cmd.SetContext(context.Background())
	if got, _ := completeGroups(e)(cmd, nil, ""); len(got) != 0 {
		t.Errorf("offered %q with no broker", got)
	}
}

// completeWords runs cobra's hidden __complete command, as the shell
// scripts do, and returns the values offered (descriptions cut off) and
// the directive line.
func completeWords(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	out, stderr, code := runCLI(t, append([]string{"__complete"}, args...)...)
	requireCode(t, code, exitOK, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var values []string
	for _, l := range lines[:len(lines)-1] {
		v, _, _ := strings.Cut(l, "\t")
		values = append(values, v)
	}
	return values, lines[len(lines)-1]
}

func TestCompleteFlagValues(t *testing.T) {
	isolateProfiles(t)
	noFiles := ":" + strconv.Itoa(int(cobra.ShellCompDirectiveNoFileComp))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"consume", "orders", "--offset", ""}, "start,beginning,earliest,oldest,end,latest,newest,stored,-10,@"},
		{[]string{"consume", "orders", "-o", "e"}, "earliest,end"},
		{[]string{"produce", "orders", "-z", ""}, "none,gzip,snappy,lz4,zstd"},
		{[]string{"bench", "produce", "--compression", "z"}, "zstd"},
		{[]string{"produce", "orders", "--acks", ""}, "all,1,0"},
		{[]string{"topic", "list", "-o", ""}, "text,json"},
		{[]string{"consume", "orders", "--output", "j"}, "json"},
		{[]string{"topic", "offsets", "orders", "--at", "s"}, "start"},
		{[]string{"cluster", "elect-leaders", "--type", ""}, "preferred,unclean"},
		{[]string{"acl", "create", "--operation", "describe"}, "describe,describe-configs"},
		{[]string{"acl", "list", "--resource-pattern-type", "p"}, "prefixed"},
	} {
		got, directive := completeWords(t, tc.args...)
		if strings.Join(got, ",") != tc.want || directive != noFiles {
			t.Errorf("%v: offered %q %s, want %s %s", tc.args, got, directive, tc.want, noFiles)
		}
	}

	got, directive := completeWords(t, "topic", "create", "orders", "-c", "retention.")
	if !slices.Contains(got, "retention.ms=") || directive != ":"+strconv.Itoa(int(cobra.ShellCompDirectiveNoFileComp|cobra.ShellCompDirectiveNoSpace)) {
		t.Errorf("topic create -c retention.: %q %s", got, directive)
	}
	got, _ = completeWords(t, "topic", "alter-config", "orders", "--delete", "cleanup")
	if strings.Join(got, ",") != "cleanup.policy" {
		t.Errorf("topic alter-config --delete cleanup: %q", got)
	}
	// cluster config set --delete keeps its own completion: dynamic broker keys.
	got, _ = completeWords(t, "cluster", "config", "set", "--delete", "log.retention.m")
	if strings.Join(got, ",") != "log.retention.ms" {
		t.Errorf("cluster config set --delete: %q", got)
	}

	_, stderr, code := runCLI(t, "profile", "create", "prod", "--brokers", "k:9092")
	requireCode(t, code, exitOK, stderr)
	if got, _ := completeWords(t, "topic", "list", "--profile", ""); strings.Join(got, ",") != "prod" {
		t.Errorf("--profile offered %q, want prod", got)
	}
	if got, _ := completeWords(t, "profile", "use", ""); strings.Join(got, ",") != "prod" {
		t.Errorf("profile use offered %q, want prod", got)
	}
}
