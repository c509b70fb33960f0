package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// aclBroker is a broker with the authorizer on, where the CLI (which
// connects without authentication, as User:ANONYMOUS) is a super user.
func aclBroker(t *testing.T) string {
	t.Helper()
	return startBroker(t, "authorizer.class.name=acl", "super.users=User:ANONYMOUS")
}

func aclListJSON(t *testing.T, addr string, args ...string) []aclEntry {
	t.Helper()
	out, stderr, code := runCLI(t, append([]string{"acl", "list", "--json", "--brokers", addr}, args...)...)
	requireCode(t, code, exitOK, stderr)
	var entries []aclEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("acl list --json: %v\n%s", err, out)
	}
	return entries
}

func TestACLCreateListDelete(t *testing.T) {
	addr := aclBroker(t)
	out, stderr, code := runCLI(t, "acl", "create", "--allow-principal", "User:alice", "--operation", "read",
		"--operation", "describe", "--topic", "orders", "--group", "billing", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if n := strings.Count(out, "created ACL ALLOW User:alice"); n != 4 {
		t.Fatalf("create printed %d ACLs, want 4 (2 operations × 2 resources):\n%s", n, out)
	}
	out, stderr, code = runCLI(t, "acl", "create", "--deny-principal", "User:mallory", "--operation", "all",
		"--topic", "logs-", "--resource-pattern-type", "prefixed", "--host", "10.0.0.9", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var created struct {
		Created []aclEntry   `json:"created"`
		Errors  []aclFailure `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create --json: %v\n%s", err, out)
	}
	want := aclEntry{ResourceType: "TOPIC", ResourceName: "logs-", PatternType: "PREFIXED", Principal: "User:mallory",
		Host: "10.0.0.9", Operation: "ALL", Permission: "DENY"}
	if len(created.Created) != 1 || created.Created[0] != want || len(created.Errors) != 0 {
		t.Fatalf("create --json = %+v, want %+v", created, want)
	}

	if all := aclListJSON(t, addr); len(all) != 5 {
		t.Fatalf("list shows %d ACLs, want 5: %+v", len(all), all)
	}
	if got := aclListJSON(t, addr, "--principal", "User:mallory"); len(got) != 1 || got[0] != want {
		t.Fatalf("list --principal User:mallory = %+v", got)
	}
	// MATCH: the ACLs that apply to topic logs-app, the prefixed one.
	if got := aclListJSON(t, addr, "--topic", "logs-app", "--resource-pattern-type", "match"); len(got) != 1 {
		t.Fatalf("list --topic logs-app match = %+v", got)
	}
	out, stderr, code = runCLI(t, "acl", "list", "--topic", "orders", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, "PRINCIPAL") || strings.Count(out, "User:alice") != 2 {
		t.Fatalf("list --topic orders printed:\n%s", out)
	}

	out, stderr, code = runCLI(t, "acl", "delete", "--allow-principal", "User:alice", "--topic", "orders", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if strings.Count(out, "deleted ACL") != 2 {
		t.Fatalf("delete printed:\n%s", out)
	}
	if all := aclListJSON(t, addr); len(all) != 3 {
		t.Fatalf("after delete %d ACLs, want 3", len(all))
	}
	out, stderr, code = runCLI(t, "acl", "delete", "--all", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var deleted struct {
		Deleted []aclEntry `json:"deleted"`
	}
	if err := json.Unmarshal([]byte(out), &deleted); err != nil || len(deleted.Deleted) != 3 {
		t.Fatalf("delete --all --json: %v\n%s", err, out)
	}
	if all := aclListJSON(t, addr); len(all) != 0 {
		t.Fatalf("after delete --all: %+v", all)
	}
}

func TestACLUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"acl", "create", "--operation", "read", "--topic", "t"},                                // no principal
		{"acl", "create", "--allow-principal", "alice", "--operation", "read", "--topic", "t"},  // no type
		{"acl", "create", "--allow-principal", "User:a", "--topic", "t"},                        // no operation
		{"acl", "create", "--allow-principal", "User:a", "--operation", "read"},                 // no resource
		{"acl", "create", "--allow-principal", "User:a", "--operation", "reed", "--topic", "t"}, // bad operation
		{"acl", "create", "--allow-principal", "User:a", "--operation", "read", "--topic", "t", "--resource-pattern-type", "match"},
		{"acl", "delete"},                          // names nothing
		{"acl", "delete", "--all", "--topic", "t"}, // --all with a filter
	} {
		_, stderr, code := runCLI(t, append(args, "--brokers", "127.0.0.1:1")...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d (usage); stderr: %s", args, code, exitUsage, stderr)
		}
	}
}

func TestACLWithoutAuthorizer(t *testing.T) {
	addr := startBroker(t)
	_, stderr, code := runCLI(t, "acl", "list", "--brokers", addr)
	if code == exitOK || !strings.Contains(stderr, "SECURITY_DISABLED") {
		t.Fatalf("list without an authorizer: exit %d, stderr %q; want SECURITY_DISABLED", code, stderr)
	}
}
