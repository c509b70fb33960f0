package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
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
	if apis["Produce"].Max < 9 || apis["Fetch"].Min != 4 || apis["JoinGroup"].Name == "" || apis["DescribeQuorum"].Max != 2 {
		t.Errorf("apis = %+v", b.APIs)
	}
	if len(info.Controllers) != 1 || info.ControllersNote != "" {
		t.Fatalf("controllers = %+v, note %q", info.Controllers, info.ControllersNote)
	}
	if c := info.Controllers[0]; c.NodeID != 1 || c.Role != "leader" || c.Address == "" || c.LogEndOffset <= 0 ||
		c.Lag != 0 || c.LastCaughtUpMs <= 0 {
		t.Errorf("controller = %+v", c)
	}
	out, stderr, code = runCLI(t, "cluster", "info", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	for _, want := range []string{"Cluster ID:  " + info.ClusterID, "Controller:  1", addr,
		"CONTROLLER", "LOG END OFFSET", "leader", info.Controllers[0].Address} {
		if !strings.Contains(out, want) {
			t.Errorf("info text lacks %q:\n%s", want, out)
		}
	}
}

// TestClusterInfoControllers turns DescribeQuorum answers into rows: roles,
// lag against the leader, unknowns kept unknown, and the notes shown
// instead of the table when the quorum cannot be described.
func TestClusterInfoControllers(t *testing.T) {
	replica := func(id int32, end, caughtUp int64) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
		return kmsg.DescribeQuorumResponseTopicPartitionReplicaState{ReplicaID: id, LogEndOffset: end,
			LastFetchTimestamp: caughtUp, LastCaughtUpTimestamp: caughtUp}
	}
	resp := kmsg.NewPtrDescribeQuorumResponse()
	resp.Topics = []kmsg.DescribeQuorumResponseTopic{{Topic: "__cluster_metadata", Partitions: []kmsg.DescribeQuorumResponseTopicPartition{{
		LeaderID: 2, LeaderEpoch: 3, HighWatermark: 40,
		CurrentVoters: []kmsg.DescribeQuorumResponseTopicPartitionReplicaState{replica(3, -1, -1), replica(2, 42, 1000), replica(1, 40, 900)},
		Observers:     []kmsg.DescribeQuorumResponseTopicPartitionReplicaState{replica(4, 30, 500)},
	}}}}
	resp.Nodes = []kmsg.DescribeQuorumResponseNode{{NodeID: 1, Listeners: []kmsg.DescribeQuorumResponseNodeListener{{Name: "CONTROLLER", Host: "h1", Port: 9093}}}}
	got, err := quorumControllers(resp)
	if err != nil {
		t.Fatal(err)
	}
	want := []clusterController{
		{NodeID: 1, Address: "h1:9093", Role: "follower", LogEndOffset: 40, Lag: 2, LastCaughtUpMs: 900},
		{NodeID: 2, Role: "leader", LogEndOffset: 42, Lag: 0, LastCaughtUpMs: 1000},
		{NodeID: 3, Role: "follower", LogEndOffset: -1, Lag: -1, LastCaughtUpMs: -1},
		{NodeID: 4, Role: "observer", LogEndOffset: 30, Lag: 12, LastCaughtUpMs: 500},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	var text strings.Builder
	if err := printControllers(&text, got, time.UnixMilli(1250)); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"leader", "250ms ago", "350ms ago"} {
		if !strings.Contains(text.String(), line) {
			t.Errorf("table lacks %q:\n%s", line, text.String())
		}
	}

	resp.ErrorCode = kerr.UnsupportedVersion.Code
	if _, err := quorumControllers(resp); err == nil || !strings.Contains(err.Error(), "does not serve DescribeQuorum") {
		t.Errorf("UNSUPPORTED_VERSION: %v", err)
	}
	resp.ErrorCode = 0
	resp.Topics[0].Partitions[0].ErrorCode = kerr.UnknownTopicOrPartition.Code
	if _, err := quorumControllers(resp); err == nil {
		t.Error("a partition error was not reported")
	}
	// A controller whose ApiVersions lacks key 55 is not asked at all.
	old := &clusterInfo{Controller: 1, Brokers: []clusterBroker{{NodeID: 1, APIs: []clusterAPI{{Key: 0}, {Key: 60}}}}}
	if c, note := describeControllers(context.Background(), nil, old); c != nil || note != "broker 1 does not serve DescribeQuorum (55)" {
		t.Errorf("old broker: %v %q", c, note)
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
	out, stderr, code := runCLI(t, "cluster", "health", "--brokers", "nocolon", "--json")
	requireCode(t, code, exitUsage, stderr)
	if out != "" {
		t.Errorf("health --json with a malformed --brokers printed %q", out)
	}
}

// A script reading `cluster health --json` gets its document also when no
// broker answers: unhealthy, the failed check and the error, and exit 1.
func TestClusterHealthJSONWithTheBrokerDown(t *testing.T) {
	dead := deadBroker(t)
	out, stderr, code := runCLI(t, "cluster", "health", "--json", "--brokers", dead, "--timeout", "2s")
	requireCode(t, code, exitError, stderr)
	var got healthReport
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	want := "cannot reach " + dead + ": connection refused"
	if got.Healthy || len(got.Checks) != 1 || got.Checks[0].OK || got.Checks[0].Name != "brokers" ||
		!strings.Contains(got.Checks[0].Detail, want) || !strings.Contains(got.Error, want) {
		t.Fatalf("health --json with the broker down = %+v", got)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}
