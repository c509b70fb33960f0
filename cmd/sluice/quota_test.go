package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestQuotaAlterAndDescribe(t *testing.T) {
	addr := startBroker(t)
	out, stderr, code := runCLI(t, "quota", "alter", "--user", "alice", "--set", "producer_byte_rate=1048576",
		"--set", "request_percentage=50", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if want := "Altered user=alice: set producer_byte_rate=1048576, set request_percentage=50\n"; out != want {
		t.Fatalf("alter printed %q, want %q", out, want)
	}
	out, stderr, code = runCLI(t, "quota", "alter", "--user", "alice", "--default", "client-id",
		"--set", "consumer_byte_rate=2048", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var change quotaChange
	if err := json.Unmarshal([]byte(out), &change); err != nil || len(change.Entity) != 2 || change.Entity[1].Name != nil {
		t.Fatalf("alter --json: %v\n%s", err, out)
	}
	runCLI(t, "quota", "alter", "--ip", "10.0.0.7", "--set", "connection_creation_rate=5", "--brokers", addr)

	out, stderr, code = runCLI(t, "quota", "describe", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var all []describedQuota
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != 3 {
		t.Fatalf("describe --json: %v\n%s", err, out)
	}

	out, stderr, code = runCLI(t, "quota", "describe", "--user", "alice", "--strict", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "user=alice") || !strings.Contains(lines[1], "1048576") {
		t.Fatalf("describe --user alice --strict:\n%s", out)
	}

	out, stderr, code = runCLI(t, "quota", "alter", "--user", "alice", "--delete", "producer_byte_rate",
		"--delete", "request_percentage", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	out, _, _ = runCLI(t, "quota", "describe", "--user", "alice", "--strict", "--json", "--brokers", addr)
	if strings.TrimSpace(out) != "[]" {
		t.Fatalf("alice's quotas after deleting them: %s", out)
	}
}

func TestQuotaAlterErrors(t *testing.T) {
	addr := startBroker(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--user", "a", "--set", "bogus=1"}, exitError, "INVALID_REQUEST"},
		{[]string{"--user", "a", "--set", "producer_byte_rate=-5"}, exitError, "greater than 0"},
		{[]string{"--ip", "not-an-ip", "--set", "connection_creation_rate=1"}, exitError, "not an IP address"},
		{[]string{"--user", "a", "--set", "controller_mutation_rate=1"}, exitError, "does not throttle"},
		{[]string{"--set", "producer_byte_rate=1"}, exitUsage, "name an entity"},
		{[]string{"--user", "a"}, exitUsage, "nothing to change"},
		{[]string{"--user", "a", "--set", "producer_byte_rate=fast"}, exitUsage, "not a number"},
		{[]string{"--user", "a", "--default", "user", "--set", "producer_byte_rate=1"}, exitUsage, "twice"},
		{[]string{"--default", "group", "--set", "producer_byte_rate=1"}, exitUsage, "want user, client-id or ip"},
	} {
		_, stderr, code := runCLI(t, append(append([]string{"quota", "alter"}, tc.args...), "--brokers", addr)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
	out, _, _ := runCLI(t, "quota", "describe", "--json", "--brokers", addr)
	if strings.TrimSpace(out) != "[]" {
		t.Fatalf("a refused change was applied: %s", out)
	}
}
