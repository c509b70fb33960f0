package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// configGet runs `cluster config get KEY --json` and decodes the answer.
func configGet(t *testing.T, addr, key string, args ...string) brokerConfigEntry {
	t.Helper()
	out, stderr, code := runCLI(t, append([]string{"cluster", "config", "get", key, "--json", "--brokers", addr}, args...)...)
	requireCode(t, code, exitOK, stderr)
	var got struct {
		Node int32 `json:"node"`
		brokerConfigEntry
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("get --json: %v\n%s", err, out)
	}
	if got.Node != 1 || got.Key != key {
		t.Fatalf("get %s answered %+v", key, got)
	}
	return got.brokerConfigEntry
}

func requireConfig(t *testing.T, got brokerConfigEntry, value, source string, dynamic bool) {
	t.Helper()
	if got.Value == nil || *got.Value != value || got.Source != source || got.Dynamic != dynamic {
		t.Fatalf("%s = %s from %s (dynamic %v), want %s from %s (dynamic %v)",
			got.Key, configValueText(got), got.Source, got.Dynamic, value, source, dynamic)
	}
}

func TestClusterConfigDescribe(t *testing.T) {
	addr := startBroker(t, "num.partitions=3")
	out, stderr, code := runCLI(t, "cluster", "config", "describe", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var got brokerConfigs
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("describe --json: %v\n%s", err, out)
	}
	byKey := map[string]brokerConfigEntry{}
	for _, c := range got.Configs {
		byKey[c.Key] = c
	}
	if got.Node != 1 || len(got.Configs) < 20 {
		t.Fatalf("describe: node %d with %d configs", got.Node, len(got.Configs))
	}
	requireConfig(t, byKey["num.partitions"], "3", "static", false)
	requireConfig(t, byKey["log.retention.ms"], "604800000", "default", true)

	out, stderr, code = runCLI(t, "cluster", "config", "describe", "--node", "1", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	for _, want := range []string{"Node 1", "KEY", "SOURCE", "DYNAMIC"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe text lacks %q:\n%s", want, out)
		}
	}
	if !slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool {
		return strings.Join(strings.Fields(l), " ") == "num.partitions 3 static no"
	}) {
		t.Errorf("describe text lacks the num.partitions row:\n%s", out)
	}
}

// TestClusterConfigSetAndGet walks log.retention.ms through every layer a
// broker resolves: default, cluster-wide dynamic, per-broker dynamic, and
// back as each is deleted.
func TestClusterConfigSetAndGet(t *testing.T) {
	addr := startBroker(t, "num.partitions=3")
	out, stderr, code := runCLI(t, "cluster", "config", "get", "num.partitions", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if out != "3\n" {
		t.Fatalf("get num.partitions printed %q, want 3", out)
	}
	requireConfig(t, configGet(t, addr, "log.retention.ms"), "604800000", "default", true)

	out, stderr, code = runCLI(t, "cluster", "config", "set", "log.retention.ms=3600000", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if out != "set log.retention.ms=3600000 on the cluster-wide default\n" {
		t.Errorf("set printed %q", out)
	}
	requireConfig(t, configGet(t, addr, "log.retention.ms"), "3600000", "dynamic-cluster", true)

	out, stderr, code = runCLI(t, "cluster", "config", "set", "log.retention.ms=7200000", "--node", "1", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var change configChange
	if err := json.Unmarshal([]byte(out), &change); err != nil || change.Node == nil || *change.Node != 1 ||
		change.Set["log.retention.ms"] != "7200000" || len(change.Deleted) != 0 {
		t.Fatalf("set --json printed %s (%v)", out, err)
	}
	requireConfig(t, configGet(t, addr, "log.retention.ms", "--node", "1"), "7200000", "dynamic-broker", true)

	_, stderr, code = runCLI(t, "cluster", "config", "set", "--delete", "log.retention.ms", "--node", "1", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	requireConfig(t, configGet(t, addr, "log.retention.ms"), "3600000", "dynamic-cluster", true)
	// The node has no value of its own any more: deleting it again is an
	// error, and the cluster-wide value stays.
	_, stderr, code = runCLI(t, "cluster", "config", "set", "--delete", "log.retention.ms", "--node", "1", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "node 1 has no value of log.retention.ms to delete") {
		t.Errorf("deleting an unset node value: stderr %q", stderr)
	}
	requireConfig(t, configGet(t, addr, "log.retention.ms"), "3600000", "dynamic-cluster", true)
	out, stderr, code = runCLI(t, "cluster", "config", "set", "--delete", "log.retention.ms", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if out != "deleted log.retention.ms from the cluster-wide default\n" {
		t.Errorf("set --delete printed %q", out)
	}
	requireConfig(t, configGet(t, addr, "log.retention.ms"), "604800000", "default", true)
	_, stderr, code = runCLI(t, "cluster", "config", "set", "--delete", "log.retention.ms", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "the cluster-wide default has no value of log.retention.ms to delete") {
		t.Errorf("deleting an unset cluster-wide value: stderr %q", stderr)
	}
}

func TestClusterConfigErrors(t *testing.T) {
	addr := startBroker(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"get", "no.such.key"}, exitError, `node 1 has no config "no.such.key"`},
		{[]string{"get", "num.partitions", "--node", "99"}, exitError, "node 99 is not a broker of this cluster (brokers: 1)"},
		{[]string{"describe", "--node", "7"}, exitError, "node 7 is not a broker"},
		// The broker's reason reaches the user: a static key, an unknown
		// key, a bad value.
		{[]string{"set", "num.partitions=5"}, exitError, `alter configs of the cluster-wide default: INVALID_CONFIG: Configuration is invalid. (unknown config: "num.partitions" is not a dynamic broker config)`},
		{[]string{"set", "no.such.key=1"}, exitError, `"no.such.key" is not a dynamic broker config`},
		{[]string{"set", "log.retention.ms=soon", "--node", "1"}, exitError, "alter configs of node 1: INVALID_CONFIG"},
		{[]string{"set"}, exitUsage, "nothing to change"},
		{[]string{"set", "log.retention.ms"}, exitUsage, `"log.retention.ms": want KEY=VALUE`},
		{[]string{"set", "a=1", "--delete", "a"}, exitUsage, "a is both set and deleted"},
		{[]string{"set", "a=1", "a=2"}, exitUsage, "a is given twice"},
		{[]string{"set", "--delete", "a=1"}, exitUsage, "want a key"},
		{[]string{"get"}, exitUsage, "takes one config key"},
		{[]string{"get", "a", "b"}, exitUsage, "takes one config key"},
		{[]string{"describe", "extra"}, exitUsage, "takes no arguments"},
	} {
		args := append([]string{"cluster", "config"}, tc.args...)
		_, stderr, code := runCLI(t, append(args, "--brokers", addr)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
	requireConfig(t, configGet(t, addr, "log.retention.ms"), "604800000", "default", true)

	dead := deadBroker(t)
	_, stderr, code := runCLI(t, "cluster", "config", "describe", "--brokers", dead)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "cannot reach "+dead) {
		t.Errorf("describe with the broker down: %q", stderr)
	}
}

func TestClusterConfigSourceNames(t *testing.T) {
	for s, want := range map[kmsg.ConfigSource]string{
		kmsg.ConfigSourceDynamicBrokerConfig:        "dynamic-broker",
		kmsg.ConfigSourceDynamicDefaultBrokerConfig: "dynamic-cluster",
		kmsg.ConfigSourceStaticBrokerConfig:         "static",
		kmsg.ConfigSourceDefaultConfig:              "default",
		kmsg.ConfigSource(42):                       "unknown-42",
	} {
		if got := brokerConfigSourceName(s); got != want {
			t.Errorf("source %d = %q, want %q", s, got, want)
		}
	}
}

func TestClusterConfigCompletesKeys(t *testing.T) {
	cmd := &cobra.Command{}
	got, directive := completeConfigKeys(true, "=")(cmd, nil, "log.retention.")
	if !slices.Contains(got, "log.retention.ms=") || slices.Contains(got, "log.retention.check.interval.ms=") {
		t.Errorf("set offered %q: want dynamic keys only, each with =", got)
	}
	if directive != cobra.ShellCompDirectiveNoFileComp|cobra.ShellCompDirectiveNoSpace {
		t.Errorf("set directive %v", directive)
	}
	got, _ = completeConfigKeys(false, "")(cmd, nil, "num.")
	if !slices.Equal(got, []string{"num.partitions"}) {
		t.Errorf("get offered %q, want num.partitions", got)
	}
}
