package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// groupMember joins group as a live kgo consumer of topic and polls until it
// has an assignment; the returned func makes it leave.
func groupMember(t *testing.T, addr, group, topic string) func() {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(describeMembers(t, addr, group)) == 0 {
		pollCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		cl.PollRecords(pollCtx, 1)
		cancel()
		if ctx.Err() != nil {
			t.Fatal("the member never joined")
		}
	}
	closed := false
	leave := func() {
		if !closed {
			closed = true
			cl.Close() // leaves the group
		}
	}
	t.Cleanup(leave)
	return leave
}

// describeMembers returns the client ids of the group's members once it is
// Stable, nil before.
func describeMembers(t *testing.T, addr, group string) []string {
	out, _, code := runCLI(t, "group", "describe", group, "--json", "--brokers", addr)
	if code != exitOK {
		return nil
	}
	var d groupDescription
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if d.State != "Stable" {
		return nil // still rebalancing
	}
	var ids []string
	for _, m := range d.Members {
		ids = append(ids, m.ClientID)
	}
	return ids
}

func describeGroupJSON(t *testing.T, addr, group string) groupDescription {
	t.Helper()
	out, stderr, code := runCLI(t, "group", "describe", group, "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var d groupDescription
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("describe --json: %v\n%s", err, out)
	}
	return d
}

func TestGroupDescribeLagAndList(t *testing.T) {
	addr := groupBroker(t)
	produceNumbered(t, addr, "orders", 0, 10)
	consumeOK(t, addr, "orders", "-g", "billing", "-n", "4")

	d := describeGroupJSON(t, addr, "billing")
	if d.State != "Empty" || d.TotalLag != 6 || len(d.Partitions) != 1 {
		t.Fatalf("describe = %+v, want Empty with lag 6 on one partition", d)
	}
	if p := d.Partitions[0]; p.Committed != 4 || p.LogEnd != 10 || p.Lag != 6 {
		t.Fatalf("partition = %+v, want committed 4, end 10, lag 6", p)
	}
	out, stderr, code := runCLI(t, "group", "describe", "billing", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	for _, want := range []string{"Total lag:    6", "COMMITTED", "orders  0          4          10       6"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe text lacks %q:\n%s", want, out)
		}
	}

	leave := groupMember(t, addr, "billing", "orders")
	d = describeGroupJSON(t, addr, "billing")
	if d.State != "Stable" || len(d.Members) != 1 || joinIDs(d.Members[0].Assigned["orders"]) != "0" {
		t.Fatalf("with a member: %+v", d)
	}
	out, stderr, code = runCLI(t, "group", "list", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var listed []groupListed
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Group != "billing" || listed[0].State != "Stable" || listed[0].Members != 1 {
		t.Fatalf("list = %+v", listed)
	}
	leave()
	out, stderr, code = runCLI(t, "group", "list", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, "billing  Empty") {
		t.Errorf("list after the member left:\n%s", out)
	}
}

func TestGroupResetOffsets(t *testing.T) {
	addr := groupBroker(t)
	produceNumbered(t, addr, "orders", 0, 10)
	consumeOK(t, addr, "orders", "-g", "billing", "-n", "5")

	reset := func(args ...string) (string, string, int) {
		return runCLI(t, append([]string{"group", "reset-offsets", "billing", "--topic", "orders", "--brokers", addr}, args...)...)
	}
	// --dry-run changes nothing.
	out, stderr, code := reset("--to-earliest", "--dry-run", "--json")
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, `"old_offset": 5`) || !strings.Contains(out, `"new_offset": 0`) || !strings.Contains(out, `"dry_run": true`) {
		t.Fatalf("dry run printed %s", out)
	}
	if got := committedOffset(t, addr, "billing", "orders"); got != 5 {
		t.Fatalf("after --dry-run committed %d, want 5", got)
	}
	cases := []struct {
		args []string
		want int64
	}{
		{[]string{"--to-earliest"}, 0},
		{[]string{"--to-latest"}, 10},
		{[]string{"--to-offset", "3"}, 3},
		{[]string{"--shift-by", "2"}, 5},
		{[]string{"--shift-by", "-100"}, 0}, // clamped to the log start
		{[]string{"--to-offset", "99"}, 10}, // clamped to the log end
		{[]string{"--to-timestamp", "0"}, 0},
		{[]string{"--to-timestamp", "@0"}, 0},
		{[]string{"--to-timestamp", time.Now().Add(time.Hour).Format(time.RFC3339)}, 10},
	}
	for _, tc := range cases {
		_, stderr, code := reset(tc.args...)
		requireCode(t, code, exitOK, stderr)
		if got := committedOffset(t, addr, "billing", "orders"); got != tc.want {
			t.Errorf("reset %v: committed %d, want %d", tc.args, got, tc.want)
		}
	}

	// Refused while a consumer is in the group.
	leave := groupMember(t, addr, "billing", "orders")
	_, stderr, code = reset("--to-earliest")
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, `group "billing" is Stable with 1 member(s): stop its consumers first`) {
		t.Errorf("reset of an active group: %q", stderr)
	}
	_, stderr, code = runCLI(t, "group", "delete", "billing", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "NON_EMPTY_GROUP") {
		t.Errorf("delete of an active group: %q", stderr)
	}
	leave()
	out, stderr, code = runCLI(t, "group", "delete", "billing", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, "deleted group billing") {
		t.Errorf("delete printed %q", out)
	}
	_, stderr, code = runCLI(t, "group", "describe", "billing", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, `group "billing" does not exist`) {
		t.Errorf("describe after delete: %q", stderr)
	}
}

func TestGroupErrors(t *testing.T) {
	addr := startBroker(t)
	dead := deadBroker(t)
	usage := [][]string{
		{"group", "describe"},
		{"group", "reset-offsets", "g", "--topic", "t"},
		{"group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"},
		{"group", "reset-offsets", "g", "--to-earliest"},
		{"group", "reset-offsets", "g", "--topic", "t:x", "--to-earliest"},
		{"group", "reset-offsets", "g", "--topic", "t", "--to-timestamp", "yesterday"},
	}
	for _, args := range usage {
		_, stderr, code := runCLI(t, append(args, "--brokers", addr)...)
		if code != exitUsage {
			t.Errorf("sluice %v: exit %d, want 2; stderr %q", args, code, stderr)
		}
	}
	_, stderr, code := runCLI(t, "group", "reset-offsets", "g", "--topic", "missing", "--to-earliest", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, `topic "missing" does not exist`) {
		t.Errorf("reset on a missing topic: %q", stderr)
	}
	_, stderr, code = runCLI(t, "group", "delete", "nope", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, `group "nope" does not exist`) {
		t.Errorf("delete of a missing group: %q", stderr)
	}
	_, stderr, code = runCLI(t, "group", "list", "--brokers", dead)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "cannot reach "+dead) {
		t.Errorf("broker down: %q", stderr)
	}
}

// TestGroupDescribeConsumerProtocol: a member of the consumer group
// protocol (KIP-848) is described with its member epoch and assignment,
// and the group with its assignor and epochs.
func TestGroupDescribeConsumerProtocol(t *testing.T) {
	addr := groupBroker(t)
	produceNumbered(t, addr, "orders", 0, 10)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("next"), kgo.ConsumeTopics("orders"),
		kgo.ServerSideBalancer(), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	var d groupDescription
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for d.State != "Stable" || len(d.Members) != 1 || len(d.Members[0].Assigned["orders"]) != 1 {
		pollCtx, cancelPoll := context.WithTimeout(ctx, 100*time.Millisecond)
		cl.PollRecords(pollCtx, 1)
		cancelPoll()
		if ctx.Err() != nil {
			t.Fatalf("the member never got its assignment: %+v", d)
		}
		if out, _, code := runCLI(t, "group", "describe", "next", "--json", "--brokers", addr); code == exitOK {
			d = groupDescription{}
			if err := json.Unmarshal([]byte(out), &d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d.GroupType != "consumer" || d.Assignor != "uniform" || d.GroupEpoch < 1 || d.Members[0].MemberEpoch == nil || *d.Members[0].MemberEpoch != d.AssignmentEpoch ||
		d.Members[0].MemberType != "consumer" {
		t.Fatalf("describe = %+v", d)
	}
	out, stderr, code := runCLI(t, "group", "describe", "next", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	for _, want := range []string{"consumer group protocol (KIP-848), assignor uniform", "EPOCH", "TYPE", "consumer", "orders:0"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe text lacks %q:\n%s", want, out)
		}
	}
}

// TestGroupDescribeMixedMemberTypes: in a mixed group (a classic consumer
// joined a consumer-protocol group) each member shows its type, in text
// and JSON.
func TestGroupDescribeMixedMemberTypes(t *testing.T) {
	addr := groupBroker(t)
	produceNumbered(t, addr, "mixed", 0, 10)
	newConsumer := func(opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumerGroup("mixed"), kgo.ConsumeTopics("mixed"),
			kgo.DisableAutoCommit(), kgo.ClientID("mixed-test")}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	next := newConsumer(kgo.ServerSideBalancer())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d groupDescription
	types := func() []string {
		var out []string
		for _, m := range d.Members {
			out = append(out, m.MemberType)
		}
		slices.Sort(out)
		return out
	}
	var classic *kgo.Client
	for !slices.Equal(types(), []string{"classic", "consumer"}) {
		if classic == nil && d.GroupType == "consumer" {
			// Joins the consumer-protocol group as a classic member.
			classic = newConsumer()
		}
		for _, cl := range []*kgo.Client{next, classic} {
			if cl != nil {
				pollCtx, cancelPoll := context.WithTimeout(ctx, 100*time.Millisecond)
				cl.PollRecords(pollCtx, 1)
				cancelPoll()
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("never saw a classic and a consumer member: %+v", d)
		}
		if out, _, code := runCLI(t, "group", "describe", "mixed", "--json", "--brokers", addr); code == exitOK {
			d = groupDescription{}
			if err := json.Unmarshal([]byte(out), &d); err != nil {
				t.Fatal(err)
			}
		}
	}
	out, stderr, code := runCLI(t, "group", "describe", "mixed", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	for _, want := range []string{"TYPE", "classic", "consumer"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe text lacks %q:\n%s", want, out)
		}
	}
}
