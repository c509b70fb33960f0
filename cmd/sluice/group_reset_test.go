package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

// commitOffsets commits offsets for group by topic and partition, as a
// consumer outside the group would.
func commitOffsets(t *testing.T, addr, group string, offsets map[string]map[int32]int64) {
	t.Helper()
	os := kadm.Offsets{}
	for topic, ps := range offsets {
		for p, at := range ps {
			os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliTestTimeout)
	defer cancel()
	err := groupRetry(ctx, func() error {
		resps, err := testAdmin(t, addr).CommitOffsets(ctx, group, os)
		if err == nil {
			err = resps.Error()
		}
		return err
	})
	if err != nil {
		t.Fatalf("commit for group %q: %v", group, err)
	}
}

// resetPlan runs reset-offsets --json and returns its offsets as
// "topic/partition:old>new" in order.
func resetPlan(t *testing.T, addr string, args ...string) (string, string) {
	t.Helper()
	out, stderr, code := runCLI(t, append([]string{"group", "reset-offsets", "--json", "--brokers", addr}, args...)...)
	requireCode(t, code, exitOK, stderr)
	var got struct {
		Offsets []offsetReset `json:"offsets"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Offsets == nil {
		t.Fatalf("reset-offsets --json: %v\n%s", err, out)
	}
	var parts []string
	for _, o := range got.Offsets {
		parts = append(parts, fmt.Sprintf("%s/%d:%d>%d", o.Topic, o.Partition, o.Old, o.New))
	}
	return strings.Join(parts, " "), stderr
}

func TestGroupResetOffsetsAllTopicsGroupFile(t *testing.T) {
	addr := groupBroker(t)
	createTopic(t, addr, "orders", 1)
	createTopic(t, addr, "refunds", 2)
	createTopic(t, addr, "unused", 1)
	produceAt(t, addr, "orders", 0, 10)
	produceAt(t, addr, "refunds", 0, 5)
	produceAt(t, addr, "refunds", 1, 5)
	commitOffsets(t, addr, "billing", map[string]map[int32]int64{"orders": {0: 4}, "refunds": {0: 2}})
	commitOffsets(t, addr, "audit", map[string]map[int32]int64{"orders": {0: 7}, "refunds": {1: 3}})

	// --all-topics: every partition of the topics billing has commits for.
	got, _ := resetPlan(t, addr, "billing", "--all-topics", "--to-latest", "--dry-run")
	if want := "orders/0:4>10 refunds/0:2>5 refunds/1:-1>5"; got != want {
		t.Errorf("--all-topics plan = %s, want %s", got, want)
	}
	// --to-group copies audit's commits; refunds/0, which audit has none
	// for, is left alone and said so.
	got, stderr := resetPlan(t, addr, "billing", "--all-topics", "--to-group", "audit")
	if want := "orders/0:4>7 refunds/1:-1>3"; got != want {
		t.Errorf("--to-group plan = %s, want %s", got, want)
	}
	if !strings.Contains(stderr, `group "audit" has no commit for refunds/0: left as it is`) {
		t.Errorf("--to-group stderr %q", stderr)
	}
	if c := committedOffset(t, addr, "billing", "orders"); c != 7 {
		t.Errorf("after --to-group committed %d, want 7", c)
	}
	got, _ = resetPlan(t, addr, "billing", "--topic", "orders", "--to-group", "audit", "--dry-run")
	if want := "orders/0:7>7"; got != want {
		t.Errorf("--to-group --topic plan = %s, want %s", got, want)
	}

	// --from-file: Kafka's export format, clamped to the log; lines of the
	// several-groups format for other groups are skipped.
	file := filepath.Join(t.TempDir(), "offsets.csv")
	csv := "# exported\norders,0,99\nrefunds, 1, 1\naudit,refunds,0,4\nbilling,refunds,0,1\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ = resetPlan(t, addr, "billing", "--from-file", file)
	if want := "orders/0:7>10 refunds/0:2>1 refunds/1:3>1"; got != want {
		t.Errorf("--from-file plan = %s, want %s", got, want)
	}
	if c := committedOffset(t, addr, "billing", "orders"); c != 10 {
		t.Errorf("after --from-file committed %d, want 10", c)
	}
}

func TestGroupResetOffsetsScopeErrors(t *testing.T) {
	addr := groupBroker(t)
	createTopic(t, addr, "orders", 1)
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.csv", "orders,0,1\n")
	usage := [][]string{
		{"--topic", "orders", "--all-topics", "--to-earliest"},
		{"--to-latest"},
		{"--from-file", good, "--topic", "orders"},
		{"--from-file", good, "--all-topics"},
		{"--from-file", good, "--to-earliest"},
		{"--from-file", write("cols.csv", "orders,0\n")},
		{"--from-file", write("part.csv", "orders,x,1\n")},
		{"--from-file", write("offset.csv", "orders,0,-5\n")},
		{"--from-file", write("dup.csv", "orders,0,1\norders,0,2\n")},
		{"--from-file", write("empty.csv", "other,orders,0,1\n")},
		{"--all-topics", "--to-group", "billing"},
		{"--all-topics", "--to-group", ""},
	}
	for _, args := range usage {
		_, stderr, code := runCLI(t, append([]string{"group", "reset-offsets", "billing", "--brokers", addr}, args...)...)
		if code != exitUsage {
			t.Errorf("reset-offsets %v: exit %d, want 2; stderr %q", args, code, stderr)
		}
	}
	failures := []struct {
		args []string
		want string
	}{
		{[]string{"--all-topics", "--to-earliest"}, `group "billing" has no committed offsets: --all-topics finds no topic to reset`},
		{[]string{"--from-file", filepath.Join(dir, "missing.csv")}, "--from-file: open " + filepath.Join(dir, "missing.csv") + ": no such file or directory"},
		{[]string{"--topic", "orders", "--to-group", "nobody"}, `group "nobody" has no committed offsets to copy`},
		{[]string{"--from-file", write("missing-topic.csv", "gone,0,1\n")}, `topic "gone" does not exist`},
		{[]string{"--from-file", write("missing-part.csv", "orders,4,1\n")}, "partition 4 does not exist"},
	}
	for _, f := range failures {
		_, stderr, code := runCLI(t, append([]string{"group", "reset-offsets", "billing", "--brokers", addr}, f.args...)...)
		if code != exitError || !strings.Contains(stderr, f.want) {
			t.Errorf("reset-offsets %v: exit %d, stderr %q; want 1 and %q", f.args, code, stderr, f.want)
		}
	}
}
