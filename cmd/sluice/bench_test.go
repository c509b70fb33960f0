package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

func runBenchJSON(t *testing.T, addr string, args ...string) (benchSummary, string) {
	t.Helper()
	out, stderr, code := runCLI(t, append(append([]string{"bench"}, args...), "--json", "--brokers", addr)...)
	requireCode(t, code, exitOK, stderr)
	var sum benchSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out)
	}
	l := sum.Latency
	if !(0 <= l.P50 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("percentiles out of order: %+v", l)
	}
	if sum.Errors != 0 || sum.Seconds <= 0 || sum.MBPerSec <= 0 || sum.RecordsPerSec <= 0 {
		t.Errorf("summary = %+v", sum)
	}
	return sum, stderr
}

func TestBenchProduceConsumeE2E(t *testing.T) {
	addr := startBroker(t)
	sum, _ := runBenchJSON(t, addr, "produce", "--records", "3000", "--record-size", "100", "--producers", "2", "--compression", "lz4")
	if sum.Mode != "produce" || sum.Records != 3000 || sum.Bytes != 300000 || sum.Latency.Max <= 0 {
		t.Fatalf("produce summary = %+v", sum)
	}
	ends, err := testAdmin(t, addr).ListEndOffsets(t.Context(), "sluice-bench")
	if err != nil {
		t.Fatal(err)
	}
	var held int64
	ends.Each(func(o kadm.ListedOffset) { held += o.Offset })
	if held != 3000 {
		t.Fatalf("topic holds %d records after producing 3000", held)
	}

	// Asking for fewer than the topic holds reads exactly that many,
	// although a fetch returns whole batches.
	sum, _ = runBenchJSON(t, addr, "consume", "--records", "1001", "--consumers", "2")
	if sum.Mode != "consume" || sum.Records != 1001 || sum.Bytes != 100100 {
		t.Fatalf("consume --records 1001 of 3000: summary = %+v", sum)
	}

	// Asking for more than the topic holds fills it first.
	sum, stderr := runBenchJSON(t, addr, "consume", "--records", "5000", "--record-size", "100", "--consumers", "2")
	if sum.Records != 5000 || !strings.Contains(stderr, "producing 2000 more first") {
		t.Fatalf("consume summary = %+v, stderr %q", sum, stderr)
	}

	sum, _ = runBenchJSON(t, addr, "e2e", "--records", "400", "--rate", "2000", "--record-size", "64")
	if sum.Mode != "e2e" || sum.Records != 400 || sum.Rate != 2000 {
		t.Fatalf("e2e summary = %+v", sum)
	}
	// The schedule spreads 400 records over at least 0.2 s, however fast
	// the machine; a slow machine only lowers the figure, so this bound
	// cannot flake.
	if sum.RecordsPerSec > 1.5*sum.Rate {
		t.Errorf("e2e ran at %.0f records/s, over 1.5 × --rate %v", sum.RecordsPerSec, sum.Rate)
	}
}

// A record the broker refuses is counted and reported, and the run exits 1
// with its summary still printed.
func TestBenchProduceErrorsExitOne(t *testing.T) {
	addr := startBroker(t, "message.max.bytes=2000")
	out, stderr, code := runCLI(t, "bench", "produce", "--records", "5", "--record-size", "5000", "--topic", "small",
		"--json", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	var sum benchSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out)
	}
	if sum.Errors != 5 || sum.Records != 0 {
		t.Errorf("summary = %+v", sum)
	}
	for _, want := range []string{"5 records to topic small failed", "first failure producing to topic small", "MESSAGE_TOO_LARGE"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q: %q", want, stderr)
		}
	}
}

func TestBenchTextAndProgress(t *testing.T) {
	addr := startBroker(t)
	out, stderr, code := runCLI(t, "bench", "produce", "--records", "2000", "--rate", "4000", "--record-size", "10",
		"--progress", "--progress-interval", "50ms", "--topic", "paced", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	for _, want := range []string{"records/s", "p99 ms", "produce  2000"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	// 2000 records at 4000/s take half a second: several progress lines.
	if strings.Count(stderr, "produce: ") < 2 || !strings.Contains(stderr, "records/s") {
		t.Errorf("progress lines on stderr:\n%s", stderr)
	}
}

func TestBenchErrors(t *testing.T) {
	dead := deadBroker(t)
	usage := [][]string{
		{"bench", "produce", "--record-size", "0"},
		{"bench", "e2e", "--record-size", "4"},
		{"bench", "produce", "--rate", "-1"},
		{"bench", "produce", "--acks", "2"},
		{"bench", "produce", "--compression", "brotli"},
		{"bench", "consume", "--consumers", "0"},
		{"bench", "produce", "--records", "x"},
		{"bench", "nope"},
	}
	for _, args := range usage {
		_, stderr, code := runCLI(t, append(args, "--brokers", dead)...)
		if code != exitUsage {
			t.Errorf("sluice %v: exit %d, want 2; stderr %q", args, code, stderr)
		}
	}
	_, stderr, code := runCLI(t, "bench", "produce", "--records", "10", "--brokers", dead)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "cannot reach "+dead) {
		t.Errorf("broker down: %q", stderr)
	}
}

// Without --rate every record is due at the start, so --duration must be
// read off the clock; this once ran until interrupted.
func TestBenchDurationWithoutRate(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, stderr, code := runCLIContext(ctx, "", "bench", "produce", "--duration", "300ms", "--record-size", "10",
		"--topic", "timed", "--json", "--brokers", addr)
	if ctx.Err() != nil {
		t.Fatalf("bench produce --duration 300ms still running after 30s")
	}
	requireCode(t, code, exitOK, stderr)
	var sum benchSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out)
	}
	if sum.Records == 0 || sum.Errors != 0 {
		t.Errorf("summary = %+v", sum)
	}
}
