package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestGroupOffsetDelete(t *testing.T) {
	addr := groupBroker(t)
	createTopic(t, addr, "orders", 1)
	produceAt(t, addr, "orders", 0, 6)
	consumeOK(t, addr, "orders", "-g", "billing", "-n", "4")

	// Refused for a topic a member subscribes to, worded for people.
	leave := groupMember(t, addr, "billing", "orders")
	_, stderr, code := runCLI(t, "group", "offset-delete", "billing", "--topic", "orders", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, `group "billing": orders/0: a member of the group is subscribed to topic "orders"`) ||
		!strings.Contains(stderr, "GROUP_SUBSCRIBED_TO_TOPIC") {
		t.Errorf("offset-delete of a subscribed topic: %q", stderr)
	}
	if got := committedOffset(t, addr, "billing", "orders"); got != 4 {
		t.Fatalf("after the refusal committed %d, want 4", got)
	}
	leave()

	out, stderr, code := runCLI(t, "group", "offset-delete", "billing", "--topic", "orders:0", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var got struct {
		Group   string               `json:"group"`
		Deleted []groupOffsetDeleted `json:"deleted"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Group != "billing" || len(got.Deleted) != 1 || got.Deleted[0] != (groupOffsetDeleted{"orders", 0}) {
		t.Fatalf("offset-delete --json = %s", out)
	}
	if c := committedOffset(t, addr, "billing", "orders"); c != -1 {
		t.Fatalf("after offset-delete committed %d, want none", c)
	}
	// Again: nothing is committed, which is no error.
	out, stderr, code = runCLI(t, "group", "offset-delete", "billing", "--topic", "orders", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if out != "deleted the offset of group billing on orders/0\n" {
		t.Errorf("offset-delete text: %q", out)
	}
}

func TestGroupOffsetDeleteErrors(t *testing.T) {
	addr := groupBroker(t)
	createTopic(t, addr, "orders", 1)
	usage := [][]string{
		{"group", "offset-delete", "billing"},
		{"group", "offset-delete", "--topic", "orders"},
		{"group", "offset-delete", "billing", "--topic", "orders:x"},
		{"group", "offset-delete", "billing", "--topic", ":0"},
	}
	for _, args := range usage {
		_, stderr, code := runCLI(t, append(args, "--brokers", addr)...)
		if code != exitUsage {
			t.Errorf("sluice %v: exit %d, want 2; stderr %q", args, code, stderr)
		}
	}
	failures := []struct {
		args []string
		want string
	}{
		{[]string{"--topic", "missing"}, `topic "missing" does not exist`},
		{[]string{"--topic", "orders:5"}, "partition 5 does not exist"},
		{[]string{"--topic", "orders"}, `group "nobody" does not exist`},
	}
	for _, f := range failures {
		_, stderr, code := runCLI(t, append([]string{"group", "offset-delete", "nobody", "--brokers", addr}, f.args...)...)
		if code != exitError || !strings.Contains(stderr, f.want) {
			t.Errorf("offset-delete %v: exit %d, stderr %q; want 1 and %q", f.args, code, stderr, f.want)
		}
	}
}
