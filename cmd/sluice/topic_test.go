package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTopicCreateListDescribeDelete(t *testing.T) {
	addr := startBroker(t)
	out, stderr, code := runCLI(t, "topic", "create", "orders", "-p", "3", "-c", "retention.ms=3600000", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, "created topic orders (3 partitions, replication factor 1)") {
		t.Fatalf("create printed %q", out)
	}

	out, stderr, code = runCLI(t, "topic", "list", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, "TOPIC") || !strings.Contains(out, "orders  3           1") {
		t.Fatalf("list printed:\n%s", out)
	}
	// A group's first use creates __consumer_offsets.
	consumeOK(t, addr, "orders", "-g", "g1", "-e")
	out, stderr, code = runCLI(t, "topic", "list", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if strings.Contains(out, "__consumer_offsets") {
		t.Fatalf("list shows internal topics without --internal:\n%s", out)
	}
	out, stderr, code = runCLI(t, "topic", "list", "--internal", "-o", "json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var listed []topicListed
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	names := map[string]topicListed{}
	for _, l := range listed {
		names[l.Topic] = l
	}
	if names["orders"].Partitions != 3 || !names["__consumer_offsets"].Internal {
		t.Fatalf("list --internal --json = %+v", listed)
	}

	produceOK(t, addr, "orders", "a:1\nb:2\nc:3\n", "-K", ":", "-p", "1")
	out, stderr, code = runCLI(t, "topic", "describe", "orders", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var d topicDescription
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("describe --json: %v\n%s", err, out)
	}
	if d.Partitions != 3 || len(d.PartitionDetails) != 3 || d.ReplicationFactor != 1 {
		t.Fatalf("describe = %+v", d)
	}
	p1 := d.PartitionDetails[1]
	if p1.Partition != 1 || p1.HighWatermark != 3 || p1.LogStartOffset != 0 || p1.Leader < 0 || len(p1.ISR) != 1 {
		t.Fatalf("partition 1 = %+v, want high watermark 3 with a leader", p1)
	}
	if p0 := d.PartitionDetails[0]; p0.SizeBytes == nil || *p0.SizeBytes != 0 {
		t.Fatalf("empty partition 0 size %v, want 0 bytes (known, not null)", p0.SizeBytes)
	}
	if p1.SizeBytes == nil || *p1.SizeBytes == 0 || d.SizeBytes == nil || *d.SizeBytes != *p1.SizeBytes {
		t.Fatalf("sizes: topic %v, partition 1 %v; want the partition's bytes, all in partition 1", d.SizeBytes, p1.SizeBytes)
	}
	if len(d.Configs) != 1 || d.Configs[0].Key != "retention.ms" || d.Configs[0].Value != "3600000" || d.Configs[0].Source != "topic" {
		t.Fatalf("configs = %+v, want only retention.ms=3600000 from the topic", d.Configs)
	}
	out, stderr, code = runCLI(t, "topic", "describe", "orders", "--all-configs", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	for _, want := range []string{"Partitions:", "HIGH-WATERMARK", "retention.ms", "segment.bytes", "default"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe --all-configs lacks %q:\n%s", want, out)
		}
	}

	out, stderr, code = runCLI(t, "topic", "delete", "orders", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, "deleted topic orders") {
		t.Fatalf("delete printed %q", out)
	}
	_, stderr, code = runCLI(t, "topic", "describe", "orders", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, `topic "orders" does not exist`) {
		t.Fatalf("describe after delete: %q", stderr)
	}
}

func TestTopicAlterConfigAndAddPartitions(t *testing.T) {
	addr := startBroker(t)
	_, stderr, code := runCLI(t, "topic", "create", "events", "-p", "1", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	_, stderr, code = runCLI(t, "topic", "alter-config", "events", "--set", "retention.ms=1000", "--set", "max.message.bytes=2048", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	_, stderr, code = runCLI(t, "topic", "alter-config", "events", "--delete", "max.message.bytes", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	// A key the topic does not override: an error, and nothing changes
	// (retention.ms, deleted alongside, keeps its value).
	out, stderr, code := runCLI(t, "topic", "alter-config", "events", "--delete", "max.message.bytes", "--delete", "retention.ms", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if out != "" || !strings.Contains(stderr, "topic events has no value of max.message.bytes to delete") {
		t.Fatalf("deleting an unset key printed %q, stderr %q", out, stderr)
	}
	out, stderr, code = runCLI(t, "topic", "add-partitions", "events", "--total", "4", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, `"partitions": 4`) {
		t.Fatalf("add-partitions --json printed %q", out)
	}
	out, stderr, code = runCLI(t, "topic", "describe", "events", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var d topicDescription
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if d.Partitions != 4 || len(d.Configs) != 1 || d.Configs[0].Key != "retention.ms" || d.Configs[0].Value != "1000" {
		t.Fatalf("after alter and add-partitions: %d partitions, configs %+v", d.Partitions, d.Configs)
	}

	// The broker's reasons come through, with exit 1.
	_, stderr, code = runCLI(t, "topic", "alter-config", "events", "--set", "retention.ms=soon", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "INVALID_CONFIG") || !strings.Contains(stderr, "retention.ms") {
		t.Errorf("bad config value: %q", stderr)
	}
	// A total below the current count is refused in words, not with the
	// broker's INVALID_PARTITIONS.
	_, stderr, code = runCLI(t, "topic", "add-partitions", "events", "--total", "2", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if want := `sluice: topic "events" has 4 partitions; --total 2 would remove partitions, which Kafka cannot do` + "\n"; stderr != want {
		t.Errorf("shrinking: stderr %q, want %q", stderr, want)
	}
	// --add counts up from the current count; the JSON shape is --total's.
	out, stderr, code = runCLI(t, "topic", "add-partitions", "events", "--add", "2", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var added map[string]any
	if err := json.Unmarshal([]byte(out), &added); err != nil || len(added) != 2 || added["topic"] != "events" || added["partitions"] != 6.0 {
		t.Errorf("add-partitions --add 2 --json printed %q (%v)", out, err)
	}
	out, stderr, code = runCLI(t, "topic", "add-partitions", "events", "--add", "1", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if out != "topic events now has 7 partitions\n" {
		t.Errorf("add-partitions --add 1 printed %q", out)
	}
	_, stderr, code = runCLI(t, "topic", "create", "events", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "TOPIC_ALREADY_EXISTS") {
		t.Errorf("creating twice: %q", stderr)
	}
	_, stderr, code = runCLI(t, "topic", "delete", "missing", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, `topic "missing" does not exist`) {
		t.Errorf("deleting a missing topic: %q", stderr)
	}
}

func TestTopicUsageAndConnectionErrors(t *testing.T) {
	dead := deadBroker(t)
	usage := [][]string{
		{"topic", "create"},
		{"topic", "create", "x", "-c", "retention.ms"},
		{"topic", "create", "x", "-p", "many"},
		{"topic", "alter-config", "x"},
		{"topic", "alter-config", "x", "--delete", "a=b"},
		{"topic", "add-partitions", "x"},
		{"topic", "describe"},
		{"topic", "list", "-o", "yaml"},
	}
	for _, args := range usage {
		_, stderr, code := runCLI(t, append(args, "--brokers", dead)...)
		if code != exitUsage {
			t.Errorf("sluice %v: exit %d, want 2; stderr %q", args, code, stderr)
		}
	}
	_, stderr, code := runCLI(t, "topic", "list", "--brokers", dead)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "cannot reach "+dead+": connection refused") {
		t.Errorf("broker down: %q", stderr)
	}
	out, _, code := runCLI(t, "topic", "create", "--help")
	requireCode(t, code, exitOK, "")
	if !strings.Contains(out, "Examples:") {
		t.Errorf("topic create --help has no examples:\n%s", out)
	}
}
