package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Every topic command's --json output, parsed, and what the broker holds
// afterwards checked through kadm rather than through the CLI itself.
func TestTopicJSONOutputs(t *testing.T) {
	addr := startBroker(t)
	a, b := uniqueName("json"), uniqueName("json")
	out, stderr, code := runCLI(t, "topic", "create", a, b, "-p", "2", "-c", "segment.bytes=1048576", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var created []topicCreated
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create --json: %v\n%s", err, out)
	}
	if len(created) != 2 || created[0].Topic != a || created[1].Topic != b ||
		created[0].Partitions != 2 || created[0].ReplicationFactor != 1 || created[0].ID == "" {
		t.Fatalf("create --json = %+v", created)
	}

	out, stderr, code = runCLI(t, "topic", "alter-config", a, "--set", "retention.ms=60000", "--delete", "segment.bytes", "-o", "json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var altered struct {
		Topic   string   `json:"topic"`
		Set     []string `json:"set"`
		Deleted []string `json:"deleted"`
	}
	if err := json.Unmarshal([]byte(out), &altered); err != nil {
		t.Fatalf("alter-config --json: %v\n%s", err, out)
	}
	if altered.Topic != a || len(altered.Set) != 1 || altered.Set[0] != "retention.ms=60000" || len(altered.Deleted) != 1 {
		t.Fatalf("alter-config --json = %+v", altered)
	}
	rcs, err := testAdmin(t, addr).DescribeTopicConfigs(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := rcs.On(a, nil); err != nil || !hasConfig(c.Configs, "retention.ms", "60000") || hasConfig(c.Configs, "segment.bytes", "1048576") {
		t.Fatalf("after alter-config the broker has %+v (%v), want retention.ms=60000 and segment.bytes deleted", c.Configs, err)
	}

	out, stderr, code = runCLI(t, "topic", "delete", a, b, "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var deleted struct {
		Deleted []string `json:"deleted"`
	}
	if err := json.Unmarshal([]byte(out), &deleted); err != nil {
		t.Fatalf("delete --json: %v\n%s", err, out)
	}
	if len(deleted.Deleted) != 2 || deleted.Deleted[0] != a || deleted.Deleted[1] != b {
		t.Fatalf("delete --json = %+v", deleted)
	}
	out, stderr, code = runCLI(t, "topic", "list", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if strings.Contains(out, a) || strings.Contains(out, b) {
		t.Fatalf("deleted topics still listed:\n%s", out)
	}
}

// A command naming a topic that does not exist says so, with exit 1, and
// a partial failure (one of two topics) still reports the one that worked.
func TestTopicUnknownTopicErrors(t *testing.T) {
	addr := startBroker(t, "auto.create.topics.enable=false")
	missing := uniqueName("missing")
	for _, args := range [][]string{
		{"topic", "describe", missing},
		{"topic", "describe", missing, "--json"},
		{"topic", "delete", missing},
		{"topic", "alter-config", missing, "--set", "retention.ms=1000"},
		{"topic", "add-partitions", missing, "--total", "3"},
	} {
		_, stderr, code := runCLI(t, append(args, "--brokers", addr)...)
		requireCode(t, code, exitError, stderr)
		if !strings.Contains(stderr, `topic "`+missing+`" does not exist`) || !strings.Contains(stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
			t.Errorf("sluice %v: stderr %q, want the topic named and UNKNOWN_TOPIC_OR_PARTITION", args, stderr)
		}
	}

	kept := uniqueName("kept")
	_, stderr, code := runCLI(t, "topic", "create", kept, "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	out, stderr, code := runCLI(t, "topic", "delete", kept, missing, "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(out, "deleted topic "+kept) || !strings.Contains(stderr, `topic "`+missing+`" does not exist`) {
		t.Fatalf("delete of one present and one missing topic: stdout %q, stderr %q", out, stderr)
	}
}

// With the broker down every topic command fails at once, naming the address.
func TestTopicBrokerDown(t *testing.T) {
	dead := deadBroker(t)
	for _, args := range [][]string{
		{"topic", "create", "x"},
		{"topic", "list"},
		{"topic", "describe", "x"},
		{"topic", "delete", "x"},
		{"topic", "alter-config", "x", "--set", "retention.ms=1"},
		{"topic", "add-partitions", "x", "--add", "2"},
	} {
		_, stderr, code := runCLI(t, append(args, "--brokers", dead)...)
		requireCode(t, code, exitError, stderr)
		if !strings.Contains(stderr, "cannot reach "+dead) {
			t.Errorf("sluice %v with the broker down: %q", args, stderr)
		}
	}
}

// Usage errors the flag parser cannot catch are exit 2 and name the flag.
func TestTopicUsageMessages(t *testing.T) {
	dead := deadBroker(t) // nothing may be sent: a usage error comes first
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"topic", "create", "x", "-c", "retention.ms"}, `-c "retention.ms": want key=value`},
		{[]string{"topic", "create", "x", "-c", "=1"}, "want key=value"},
		{[]string{"topic", "alter-config", "x", "--set", "retention.ms"}, `--set "retention.ms": want key=value`},
		{[]string{"topic", "alter-config", "x"}, "nothing to change"},
		{[]string{"topic", "add-partitions", "x", "--total", "0"}, "--total 0: want the new partition count, at least 1"},
		{[]string{"topic", "add-partitions", "x", "--add", "0"}, "--add 0: want how many partitions to add, at least 1"},
		{[]string{"topic", "add-partitions", "x"}, "give exactly one of --total N (the partition count after) or --add N (how many to add)"},
		{[]string{"topic", "add-partitions", "x", "--total", "4", "--add", "1"}, "give exactly one of --total N"},
		{[]string{"topic", "add-partitions", "x", "-n", "4"}, "-n 4: -n is ambiguous (a total here once, an increment in rpk) and is gone; give --total N for the partition count after, or --add N for how many to add"},
		{[]string{"topic", "add-partitions", "x", "-n", "4", "--total", "4"}, "-n is ambiguous"},
		{[]string{"topic", "delete"}, "requires at least 1 arg"},
		{[]string{"topic", "list", "extra"}, ""},
		{[]string{"topic", "list", "--bogus"}, "unknown flag: --bogus"},
	}
	for _, c := range cases {
		_, stderr, code := runCLI(t, append(c.args, "--brokers", dead)...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("sluice %v: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, stderr, c.want)
		}
		if strings.Contains(stderr, "cannot reach") {
			t.Errorf("sluice %v contacted the broker before rejecting its arguments", c.args)
		}
	}
}

func hasConfig(configs []kadm.Config, key, value string) bool {
	for _, c := range configs {
		if c.Key == key && c.MaybeValue() == value {
			return true
		}
	}
	return false
}
