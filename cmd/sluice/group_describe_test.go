package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func describeGroupsJSON(t *testing.T, addr string, wantCode int, args ...string) []groupDescription {
	t.Helper()
	out, stderr, code := runCLI(t, append([]string{"group", "describe", "--json", "--brokers", addr}, args...)...)
	requireCode(t, code, wantCode, stderr)
	var ds []groupDescription
	if err := json.Unmarshal([]byte(out), &ds); err != nil || ds == nil {
		t.Fatalf("describe --json %v: %v\n%s", args, err, out)
	}
	return ds
}

func TestGroupDescribeSeveralAndAll(t *testing.T) {
	addr := groupBroker(t)
	// No groups yet: --all is an empty array, not null.
	if ds := describeGroupsJSON(t, addr, exitOK, "--all"); len(ds) != 0 {
		t.Fatalf("--all with no groups = %+v", ds)
	}
	createTopic(t, addr, "orders", 1)
	produceAt(t, addr, "orders", 0, 10)
	commitOffsets(t, addr, "billing", map[string]map[int32]int64{"orders": {0: 4}})
	commitOffsets(t, addr, "audit", map[string]map[int32]int64{"orders": {0: 7}})

	ds := describeGroupsJSON(t, addr, exitOK, "billing", "audit")
	if len(ds) != 2 || ds[0].Group != "billing" || ds[0].TotalLag != 6 || ds[1].Group != "audit" || ds[1].TotalLag != 3 {
		t.Fatalf("describe billing audit = %+v", ds)
	}
	ds = describeGroupsJSON(t, addr, exitOK, "--all")
	if len(ds) != 2 || ds[0].Group != "audit" || ds[1].Group != "billing" || len(ds[1].Partitions) != 1 {
		t.Fatalf("describe --all = %+v", ds)
	}
	out, stderr, code := runCLI(t, "group", "describe", "--all", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	for _, want := range []string{
		"GROUP    STATE  MEMBERS  TOTAL-LAG\naudit    Empty  0        3\nbilling  Empty  0        6\n",
		"Group:        audit", "Group:        billing", "orders  0          4          10       6",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe --all text lacks %q:\n%s", want, out)
		}
	}

	// A missing group among several: the others are shown, exit 1.
	out, stderr, code = runCLI(t, "group", "describe", "billing", "nobody", "--json", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, `group "nobody" does not exist`) || !strings.Contains(out, `"group": "billing"`) {
		t.Errorf("describe billing nobody: stdout %s stderr %q", out, stderr)
	}
	// --all with names, or neither, is a usage error.
	for _, args := range [][]string{{"billing", "--all"}, {}} {
		_, stderr, code := runCLI(t, append([]string{"group", "describe", "--brokers", addr}, args...)...)
		if code != exitUsage {
			t.Errorf("describe %v: exit %d, want 2; stderr %q", args, code, stderr)
		}
	}
}
