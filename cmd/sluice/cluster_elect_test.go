package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// A single broker leads every partition it has, so each election is "not
// needed": the command succeeds and says so. Elections that move leaders
// are tested against the controller and the API (internal/api).
func TestClusterElectLeaders(t *testing.T) {
	addr := startBroker(t)
	produceOK(t, addr, "orders", "a\nb\n")

	out, stderr, code := runCLI(t, "cluster", "elect-leaders", "--topic", "orders", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var results []electionResult
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(results) == 0 || results[0].Topic != "orders" || results[0].Result != "not needed" {
		t.Fatalf("results = %+v", results)
	}

	out, stderr, code = runCLI(t, "cluster", "elect-leaders", "--type", "unclean", "--topic", "orders:0", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, "PARTITION") || !strings.Contains(out, "not needed") {
		t.Errorf("unclean on a led partition:\n%s", out)
	}

	out, stderr, code = runCLI(t, "cluster", "elect-leaders", "--all", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, "no partition needed an election") {
		t.Errorf("--all on a balanced cluster:\n%s", out)
	}

	_, stderr, code = runCLI(t, "cluster", "elect-leaders", "--topic", "orders:7", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "orders/7") || !strings.Contains(stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("unknown partition: %q", stderr)
	}
	_, stderr, code = runCLI(t, "cluster", "elect-leaders", "--topic", "nope", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, `topic "nope" does not exist`) {
		t.Errorf("unknown topic: %q", stderr)
	}
}

func TestClusterElectLeadersUsage(t *testing.T) {
	for _, args := range [][]string{
		{},                           // neither --topic nor --all
		{"--all", "--topic", "t"},    // both
		{"--all", "--type", "dirty"}, // unknown type
		{"--topic", "t:x"},           // bad partition
		{"--topic", ":1"},            // no topic
		{"--all", "extra"},           // stray argument
	} {
		_, stderr, code := runCLI(t, append([]string{"cluster", "elect-leaders", "--brokers", "127.0.0.1:1"}, args...)...)
		requireCode(t, code, exitUsage, stderr)
	}
	named, err := parseElectTopics([]string{"a", "b:1,2", "b:2,3", "a"})
	if err != nil || len(named) != 2 || named["a"] != nil || len(named["b"]) != 3 {
		t.Fatalf("parse = %v, %v", named, err)
	}
}

func TestClusterElectLeadersBrokerDown(t *testing.T) {
	dead := deadBroker(t)
	_, stderr, code := runCLI(t, "cluster", "elect-leaders", "--all", "--brokers", dead)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "cannot reach "+dead) {
		t.Errorf("broker down: %q", stderr)
	}
}
