package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceAt writes n records v0.. to one partition of topic with a client
// of its own, so these tests do not lean on produce's flags, and returns
// the time just before the first one.
func produceAt(t *testing.T, addr, topic string, partition int32, n int) time.Time {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte("v" + strconv.Itoa(i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return start
}

// createTopic makes topic with the given partitions through the CLI.
func createTopic(t *testing.T, addr, topic string, partitions int) {
	t.Helper()
	_, stderr, code := runCLI(t, "topic", "create", topic, "-p", strconv.Itoa(partitions), "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
}

func trimJSON(t *testing.T, addr string, wantCode int, args ...string) (topicTrim, string) {
	t.Helper()
	out, stderr, code := runCLI(t, append([]string{"topic", "trim", "--json", "--brokers", addr}, args...)...)
	requireCode(t, code, wantCode, stderr)
	var tr topicTrim
	if err := json.Unmarshal([]byte(out), &tr); err != nil {
		t.Fatalf("trim --json: %v\n%s", err, out)
	}
	return tr, stderr
}

func TestTopicTrimAndOffsets(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("trim")
	createTopic(t, addr, topic, 2)
	produceAt(t, addr, topic, 0, 10)
	produceAt(t, addr, topic, 1, 4)

	// A dry run plans, with the broker's refusal predicted, and deletes nothing.
	tr, stderr := trimJSON(t, addr, exitError, topic, "--offset", "6", "--dry-run")
	if !tr.DryRun || len(tr.Partitions) != 2 {
		t.Fatalf("dry run = %+v", tr)
	}
	if p := tr.Partitions[0]; p.LowWatermark != 6 || p.RecordsDeleted != 6 || p.OldLowWatermark != 0 || p.Error != "" {
		t.Errorf("dry run partition 0 = %+v", p)
	}
	if p := tr.Partitions[1]; p.LowWatermark != -1 || !strings.Contains(p.Error, "OFFSET_OUT_OF_RANGE") {
		t.Errorf("dry run partition 1 = %+v, want OFFSET_OUT_OF_RANGE", p)
	}
	if !strings.Contains(stderr, "partition 1 to offset 6: offset 6 is past the high watermark 4 (OFFSET_OUT_OF_RANGE)") {
		t.Errorf("dry run stderr %q", stderr)
	}
	requireOffsets(t, addr, topic, "start", "0 0")

	// For real, on one partition; again below the log start changes nothing.
	tr, _ = trimJSON(t, addr, exitOK, topic+":0", "--offset", "6")
	if len(tr.Partitions) != 1 || tr.Partitions[0].LowWatermark != 6 || tr.Partitions[0].RecordsDeleted != 6 {
		t.Fatalf("trim = %+v", tr)
	}
	tr, _ = trimJSON(t, addr, exitOK, topic+":0", "--offset", "2")
	if p := tr.Partitions[0]; p.LowWatermark != 6 || p.RecordsDeleted != 0 {
		t.Fatalf("trim below the log start = %+v", p)
	}
	requireOffsets(t, addr, topic, "start", "6 0")
	requireOffsets(t, addr, topic, "end", "10 4")

	// Past the high watermark: the broker refuses that partition, exit 1,
	// the other is still trimmed and reported.
	out, stderr, code := runCLI(t, "topic", "trim", topic, "--offset", "8", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "OFFSET_OUT_OF_RANGE") || !strings.Contains(out, "NEW-LOW-WATERMARK") {
		t.Errorf("trim past the HW: stdout %q stderr %q", out, stderr)
	}
	requireOffsets(t, addr, topic, "start", "8 0")

	// By time: before the epoch deletes nothing, after every record all.
	tr, _ = trimJSON(t, addr, exitOK, topic, "--before", "0")
	if tr.Partitions[0].RecordsDeleted != 0 || tr.Partitions[1].RecordsDeleted != 0 {
		t.Fatalf("trim before 0 = %+v", tr)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tr, _ = trimJSON(t, addr, exitOK, topic, "--before", future)
	if tr.Partitions[0].LowWatermark != 10 || tr.Partitions[1].LowWatermark != 4 {
		t.Fatalf("trim before %s = %+v", future, tr)
	}
	requireOffsets(t, addr, topic, "start", "10 4")
}

func TestTopicTrimBeforeTime(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("trimtime")
	createTopic(t, addr, topic, 1)
	produceAt(t, addr, topic, 0, 3)
	time.Sleep(5 * time.Millisecond)
	second := produceAt(t, addr, topic, 0, 2)
	ms := strconv.FormatInt(second.UnixMilli(), 10)

	var offs topicOffsets
	out, stderr, code := runCLI(t, "topic", "offsets", topic, "--at", ms, "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if err := json.Unmarshal([]byte(out), &offs); err != nil {
		t.Fatal(err)
	}
	if len(offs.Offsets) != 1 || offs.Offsets[0].Offset != 3 || offs.Offsets[0].Timestamp < second.UnixMilli() {
		t.Fatalf("offsets --at %s = %s", ms, out)
	}
	tr, _ := trimJSON(t, addr, exitOK, topic, "--before", "@"+ms)
	if p := tr.Partitions[0]; p.Offset != 3 || p.LowWatermark != 3 || p.RecordsDeleted != 3 {
		t.Fatalf("trim --before @%s = %+v", ms, p)
	}
	// After every record: no record, offset -1 as kcat -Q says.
	out, stderr, code = runCLI(t, "topic", "offsets", topic, "--at", time.Now().Add(time.Hour).Format(time.RFC3339), "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, "PARTITION  OFFSET  TIMESTAMP  ERROR\n0          -1      -") {
		t.Errorf("offsets after every record:\n%s", out)
	}
}

// requireOffsets checks `topic offsets --at at` lists want, the offsets in
// partition order separated by spaces.
func requireOffsets(t *testing.T, addr, topic, at, want string) {
	t.Helper()
	out, stderr, code := runCLI(t, "topic", "offsets", topic, "--at", at, "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var offs topicOffsets
	if err := json.Unmarshal([]byte(out), &offs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range offs.Offsets {
		got = append(got, strconv.FormatInt(o.Offset, 10))
	}
	if strings.Join(got, " ") != want || offs.Topic != topic || offs.At != at {
		t.Fatalf("offsets --at %s = %s, want offsets %s", at, out, want)
	}
}

func TestTopicTrimAndOffsetsErrors(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("trimerr")
	createTopic(t, addr, topic, 1)
	usage := [][]string{
		{"topic", "trim", topic},
		{"topic", "trim", topic, "--offset", "1", "--before", "0"},
		{"topic", "trim", topic, "--offset", "-1"},
		{"topic", "trim", topic, "--before", "yesterday"},
		{"topic", "trim", topic + ":x", "--offset", "1"},
		{"topic", "trim", "--offset", "1"},
		{"topic", "offsets", topic, "--at", "soon"},
		{"topic", "offsets"},
		{"topic", "offsets", topic, "-o", "yaml"},
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
		{[]string{"topic", "trim", "missing", "--offset", "1"}, `topic "missing" does not exist`},
		{[]string{"topic", "trim", topic + ":3", "--offset", "0"}, "partition 3 does not exist"},
		{[]string{"topic", "offsets", "missing"}, `topic "missing" does not exist`},
	}
	for _, f := range failures {
		_, stderr, code := runCLI(t, append(f.args, "--brokers", addr)...)
		if code != exitError || !strings.Contains(stderr, f.want) {
			t.Errorf("sluice %v: exit %d, stderr %q; want 1 and %q", f.args, code, stderr, f.want)
		}
	}
	_, stderr, code := runCLI(t, "topic", "trim", topic, "--offset", "1", "--brokers", deadBroker(t))
	if code != exitError || !strings.Contains(stderr, "cannot reach") {
		t.Errorf("trim with the broker down: exit %d, stderr %q", code, stderr)
	}
	// An empty topic has no record at any time, and its JSON has no nulls.
	out, stderr, code := runCLI(t, "topic", "offsets", topic, "--at", "0", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, `"offset": -1`) || !strings.Contains(out, `"timestamp": -1`) {
		t.Errorf("offsets of an empty topic by time: %s", out)
	}
	out, stderr, code = runCLI(t, "topic", "trim", topic, "--offset", "0", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if strings.Contains(out, "null") || !strings.Contains(out, `"low_watermark": 0`) {
		t.Errorf("trim of an empty topic: %s", out)
	}
}
