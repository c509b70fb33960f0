package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestClusterInfo(t *testing.T) {
	addr := startBroker(t)
	out, stderr, code := runCLI(t, "cluster", "info", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var info clusterInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("info --json: %v\n%s", err, out)
	}
	if info.ClusterID == "" || info.Controller != 1 || len(info.Brokers) != 1 {
		t.Fatalf("info = %+v", info)
	}
	b := info.Brokers[0]
	if b.Address != addr || b.Error != "" {
		t.Fatalf("broker = %+v, want %s answering", b, addr)
	}
	apis := map[string]clusterAPI{}
	for _, a := range b.APIs {
		apis[a.Name] = a
	}
	if apis["Produce"].Max < 9 || apis["Fetch"].Min != 4 || apis["JoinGroup"].Name == "" {
		t.Errorf("apis = %+v", b.APIs)
	}
	out, stderr, code = runCLI(t, "cluster", "info", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	for _, want := range []string{"Cluster ID:  " + info.ClusterID, "Controller:  1", addr} {
		if !strings.Contains(out, want) {
			t.Errorf("info text lacks %q:\n%s", want, out)
		}
	}
}

func TestClusterHealth(t *testing.T) {
	addr := startBroker(t)
	produceOK(t, addr, "orders", "a\nb\n")
	out, stderr, code := runCLI(t, "cluster", "health", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var got struct {
		Healthy bool          `json:"healthy"`
		Checks  []healthCheck `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Healthy || len(got.Checks) != 4 {
		t.Fatalf("health = %+v", got)
	}
	out, stderr, code = runCLI(t, "cluster", "health", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, "offline partitions") || strings.Contains(out, "FAIL") {
		t.Errorf("health text:\n%s", out)
	}
}

func TestClusterHealthChecksName(t *testing.T) {
	ok := listCheck("offline partitions", nil, "all fine")
	bad := listCheck("offline partitions", []string{"a/0", "b/1"}, "all fine")
	if !ok.OK || bad.OK || bad.Detail != "2: a/0, b/1" {
		t.Fatalf("ok %+v bad %+v", ok, bad)
	}
}

func TestClusterErrors(t *testing.T) {
	dead := deadBroker(t)
	for _, sub := range []string{"info", "health"} {
		_, stderr, code := runCLI(t, "cluster", sub, "--brokers", dead)
		requireCode(t, code, exitError, stderr)
		if !strings.Contains(stderr, "cannot reach "+dead+": connection refused — is `sluice serve` running?") {
			t.Errorf("cluster %s with the broker down: %q", sub, stderr)
		}
	}
	_, stderr, code := runCLI(t, "cluster", "info", "extra")
	requireCode(t, code, exitUsage, stderr)
	_, stderr, code = runCLI(t, "cluster", "health", "--brokers", "nocolon")
	requireCode(t, code, exitUsage, stderr)
}
