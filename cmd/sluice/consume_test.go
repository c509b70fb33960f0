package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// produceNumbered writes records v<from>..v<to-1> to topic's partition 0.
func produceNumbered(t *testing.T, addr, topic string, from, to int) {
	t.Helper()
	var in strings.Builder
	for i := from; i < to; i++ {
		in.WriteString("v" + strconv.Itoa(i) + "\n")
	}
	produceOK(t, addr, topic, in.String())
}

func TestConsumeOffsets(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("offsets")
	produceNumbered(t, addr, topic, 0, 5)
	cases := []struct {
		offset string
		want   string
	}{
		{"start", "v0 v1 v2 v3 v4 "},
		{"beginning", "v0 v1 v2 v3 v4 "},
		{"+3", "v3 v4 "},
		{"2", "v2 v3 v4 "},
		{"-2", "v3 v4 "},
		{"-99", "v0 v1 v2 v3 v4 "},
		{"end", ""},
		{"99", ""},
	}
	for _, tc := range cases {
		if got := consumeOK(t, addr, topic, "-e", "--offset", tc.offset, "-f", "%v "); got != tc.want {
			t.Errorf("--offset %s: got %q, want %q", tc.offset, got, tc.want)
		}
		// -o is --offset, as in kcat and rpk.
		if got := consumeOK(t, addr, topic, "-e", "-o", tc.offset, "-f", "%s "); got != tc.want {
			t.Errorf("-o %s: got %q, want %q", tc.offset, got, tc.want)
		}
	}
	// -n stops after N records without -e, even though more follow.
	if got := consumeOK(t, addr, topic, "-n", "2", "-f", "%o "); got != "0 1 " {
		t.Errorf("-n 2: got %q", got)
	}
	if got := consumeOK(t, addr, topic, "-n", "2", "--offset", "-1", "-e", "-f", "%o "); got != "4 " {
		t.Errorf("-n 2 -e with one record left: got %q", got)
	}
}

func TestConsumeByTimestamp(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("time")
	produceNumbered(t, addr, topic, 0, 3)
	time.Sleep(20 * time.Millisecond)
	after := time.Now()
	time.Sleep(5 * time.Millisecond)
	produceNumbered(t, addr, topic, 3, 5)

	ms := strconv.FormatInt(after.UnixMilli(), 10)
	if got := consumeOK(t, addr, topic, "-e", "--offset", "@"+ms, "-f", "%v "); got != "v3 v4 " {
		t.Errorf("@%s: got %q", ms, got)
	}
	rfc := after.UTC().Format(time.RFC3339Nano)
	if got := consumeOK(t, addr, topic, "-e", "--offset", "@"+rfc, "-f", "%v "); got != "v3 v4 " {
		t.Errorf("@%s: got %q", rfc, got)
	}
	future := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	if got := consumeOK(t, addr, topic, "-e", "--offset", "@"+future); got != "" {
		t.Errorf("a time after every record: got %q", got)
	}
	// %T is the record's timestamp in milliseconds.
	out := consumeOK(t, addr, topic, "-e", "--offset", "-1", "-f", "%T")
	if ts, err := strconv.ParseInt(out, 10, 64); err != nil || ts < after.UnixMilli() || ts > time.Now().UnixMilli() {
		t.Errorf("%%T printed %q", out)
	}
}

func TestConsumeJSON(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("jsonl")
	produceOK(t, addr, topic, "k1|hello\nno key\nk3|\xff\xfe\n", "-K", "|", "-H", "h=1")
	stdout := consumeOK(t, addr, topic, "-e", "--json")
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 JSON lines, got:\n%s", stdout)
	}
	var recs []jsonRecord
	for _, l := range lines {
		var r jsonRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	if r := recs[0]; r.Topic != topic || r.Partition != 0 || r.Offset != 0 || r.Timestamp <= 0 ||
		*r.Key != "k1" || *r.Value != "hello" || len(r.Headers) != 1 || r.Headers[0].Key != "h" || *r.Headers[0].Value != "1" {
		t.Errorf("record 0 = %s", lines[0])
	}
	if r := recs[1]; r.Key != nil || *r.Value != "no key" || r.Offset != 1 {
		t.Errorf("record 1 = %s, want a null key", lines[1])
	}
	if r := recs[2]; r.ValueEncoding != "base64" || *r.Value != base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe}) {
		t.Errorf("record 2 = %s, want the invalid UTF-8 value as base64", lines[2])
	}
	if !strings.Contains(lines[0], `"key":"k1"`) || !strings.Contains(lines[0], `"headers":[{"key":"h","value":"1"}]`) {
		t.Errorf("field names: %s", lines[0])
	}

	// --output json is --json; consume has no -o json, -o being the offset.
	stdout = consumeOK(t, addr, topic, "-e", "-n", "1", "--output", "json", "--binary", "base64")
	var r jsonRecord
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || *r.Value != "aGVsbG8=" || r.ValueEncoding != "base64" {
		t.Errorf("--binary base64: %s (%v)", stdout, err)
	}
}

func TestConsumePartitionsAndTopics(t *testing.T) {
	addr := startBroker(t, "num.partitions=3")
	topic := uniqueName("parts")
	for p := range 3 {
		produceOK(t, addr, topic, "p"+strconv.Itoa(p)+"\n", "-p", strconv.Itoa(p))
	}
	other := uniqueName("other")
	produceOK(t, addr, other, "o\n", "-p", "1")

	lines := func(out string) []string {
		l := strings.Split(strings.TrimSpace(out), "\n")
		if l[0] == "" {
			return nil
		}
		slices.Sort(l)
		return l
	}
	if got := lines(consumeOK(t, addr, topic, "-e", "--partition", "0,2")); strings.Join(got, " ") != "p0 p2" {
		t.Errorf("--partition 0,2: %q", got)
	}
	if got := lines(consumeOK(t, addr, topic, "-e", "-p", "1", "-p", "2")); strings.Join(got, " ") != "p1 p2" {
		t.Errorf("-p 1 -p 2: %q", got)
	}
	got := lines(consumeOK(t, addr, topic, other, topic, "-e", "-f", `%t/%p=%v\n`))
	want := []string{other + "/1=o", topic + "/0=p0", topic + "/1=p1", topic + "/2=p2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("two topics: %q, want %q", got, want)
	}
}

// groupBroker starts a broker whose groups rebalance at once, so a group
// consume does not wait the default 3 s for more members.
func groupBroker(t *testing.T) string {
	return startBroker(t, "group.initial.rebalance.delay.ms=0")
}

// committedOffset returns the group's committed offset for partition 0 of
// topic, or -1.
func committedOffset(t *testing.T, addr, group, topic string) int64 {
	t.Helper()
	offsets, err := testAdmin(t, addr).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offsets.Lookup(topic, 0)
	if !ok || o.Err != nil {
		return -1
	}
	return o.At
}

func TestConsumeGroupCommits(t *testing.T) {
	addr := groupBroker(t)
	topic := uniqueName("grouped")
	group := uniqueName("billing")
	produceNumbered(t, addr, topic, 0, 3)

	if got := consumeOK(t, addr, topic, "-g", group, "-e", "-f", "%v "); got != "v0 v1 v2 " {
		t.Fatalf("first group consume: %q", got)
	}
	if c := committedOffset(t, addr, group, topic); c != 3 {
		t.Fatalf("committed offset %d, want 3", c)
	}
	if got := consumeOK(t, addr, topic, "-g", group, "-e"); got != "" {
		t.Fatalf("second group consume printed %q, want nothing new", got)
	}
	produceNumbered(t, addr, topic, 3, 5)
	// --offset applies only without a committed offset: the group resumes.
	if got := consumeOK(t, addr, topic, "-g", group, "-e", "--offset", "start", "-f", "%v "); got != "v3 v4 " {
		t.Fatalf("after more records: %q", got)
	}

	// -n commits only what was printed, not the rest of the fetch.
	g2 := uniqueName("sampler")
	if got := consumeOK(t, addr, topic, "-g", g2, "-n", "2", "-f", "%v "); got != "v0 v1 " {
		t.Fatalf("-n 2: %q", got)
	}
	if c := committedOffset(t, addr, g2, topic); c != 2 {
		t.Fatalf("after -n 2 committed %d, want 2", c)
	}
	// kcat's -o stored resumes at the committed offset.
	if got := consumeOK(t, addr, topic, "-g", g2, "-e", "-o", "stored", "-f", "%s "); got != "v2 v3 v4 " {
		t.Fatalf("-o stored: %q", got)
	}
	// A new group with --offset end starts at the end.
	if got := consumeOK(t, addr, topic, "-g", uniqueName("late"), "-e", "--offset", "end"); got != "" {
		t.Fatalf("--offset end: %q", got)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a command writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// followUntil runs consume args until its output contains want, then
// interrupts it as Ctrl-C would, and returns its exit code and output.
// background runs alongside (to produce) until stop is closed; followUntil
// waits for it to return, so it never outlives the test.
func followUntil(t *testing.T, args []string, want string, background func(stop <-chan struct{})) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTestTimeout)
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, strings.NewReader(""), &stdout, &stderr) }()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		background(stop)
	}()
	defer wg.Wait()
	defer close(stop)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), want) {
		select {
		case code := <-done:
			t.Fatalf("consume exited (%d) before printing %q; stdout %q stderr %q", code, want, stdout.String(), stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("no %q within 30s; stdout %q stderr %q", want, stdout.String(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	code := <-done
	return code, stdout.String(), stderr.String()
}

// produceEvery produces line to topic every interval until stop is closed
// (a follower that starts at the end may not have listed the end offsets
// when the first one lands).
func produceEvery(addr, topic, line string, interval time.Duration, stop <-chan struct{}) {
	for {
		run(context.Background(), []string{"produce", topic, "--brokers", addr}, strings.NewReader(line), io.Discard, io.Discard)
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
	}
}

func TestConsumeFollowsUntilInterrupted(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("follow")
	produceOK(t, addr, topic, "before\n")
	args := []string{"consume", topic, "--brokers", addr, "--offset", "end", "-f", "%v\n"}
	code, stdout, stderr := followUntil(t, args, "after\n", func(stop <-chan struct{}) {
		produceEvery(addr, topic, "after\n", 200*time.Millisecond, stop)
	})
	requireCode(t, code, exitOK, stderr)
	if strings.Contains(stdout, "before") {
		t.Errorf("--offset end printed an older record: %q", stdout)
	}
}

func TestConsumeGroupFollowCommitsOnInterrupt(t *testing.T) {
	addr := groupBroker(t)
	topic := uniqueName("gfollow")
	group := uniqueName("g")
	produceNumbered(t, addr, topic, 0, 2)
	args := []string{"consume", topic, "--brokers", addr, "-g", group, "-f", "%v\n"}
	code, stdout, stderr := followUntil(t, args, "v2\n", func(<-chan struct{}) {
		run(context.Background(), []string{"produce", topic, "--brokers", addr}, strings.NewReader("v2\n"), io.Discard, io.Discard)
	})
	requireCode(t, code, exitOK, stderr)
	if stdout != "v0\nv1\nv2\n" {
		t.Errorf("stdout = %q", stdout)
	}
	if c := committedOffset(t, addr, group, topic); c != 3 {
		t.Errorf("committed %d after Ctrl-C, want 3", c)
	}
}

func TestConsumeErrors(t *testing.T) {
	addr := startBroker(t)
	existing := uniqueName("exists")
	produceOK(t, addr, existing, "a\n")

	missing := uniqueName("missing")
	_, stderr, code := runCLI(t, "consume", missing, "--brokers", addr, "-e")
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, `sluice: topic "`+missing+`" does not exist`) {
		t.Errorf("stderr = %q", stderr)
	}
	// Asking did not create it, though the broker auto-creates topics.
	if topics, err := testAdmin(t, addr).ListTopics(context.Background(), missing); err != nil || topics[missing].Err == nil {
		t.Errorf("consume created topic %q: %+v %v", missing, topics[missing], err)
	}

	_, stderr, code = runCLI(t, "consume", existing, "--brokers", addr, "-e", "--partition", "3")
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, `topic "`+existing+`" has 1 partition(s): partition 3 does not exist`) {
		t.Errorf("stderr = %q", stderr)
	}

	dead := deadBroker(t)
	_, stderr, code = runCLI(t, "consume", existing, "--brokers", dead, "--timeout", "2s")
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "cannot reach "+dead+": connection refused — is `sluice serve` running?") {
		t.Errorf("stderr = %q", stderr)
	}
}

func TestConsumeUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"consume"}, "needs at least one TOPIC"},
		{[]string{"consume", "t", "--offset", "first"}, `-o/--offset "first": want start, end, N, -N, +N, stored, @TIMESTAMP_MS or @RFC3339`},
		{[]string{"consume", "t", "-o", "json"}, `-o "json": -o is the start offset now (as in kcat and rpk); for JSON output use --json or --output json`},
		{[]string{"consume", "t", "-ojson"}, `-o "json": -o is the start offset now`},
		{[]string{"consume", "t", "-o", "text"}, `-o "text": -o is the start offset now (as in kcat and rpk); text output is the default (--output text)`},
		{[]string{"consume", "t", "--output", "yaml"}, `--output "yaml": want text or json`},
		{[]string{"consume", "t", "-o", "stored"}, "-o stored starts at the group's committed offsets: give --group GROUP"},
		{[]string{"consume", "t", "--offset", "@noon"}, `--offset "@noon"`},
		{[]string{"consume", "t", "-f", "%q"}, "unknown verb %q"},
		{[]string{"consume", "t", "-f", "%v", "--json"}, "--format and --json conflict"},
		{[]string{"consume", "t", "-g", "g", "--partition", "0"}, "--group and --partition conflict"},
		{[]string{"consume", "t", "--partition", "-1"}, "--partition -1"},
		{[]string{"consume", "t", "-n", "-3"}, "--num -3"},
		{[]string{"consume", "t", "--binary", "hex"}, `--binary "hex"`},
		{[]string{"consume", "t", "--bogus"}, "unknown flag: --bogus"},
	}
	for _, tc := range cases {
		args := append(tc.args, "--brokers", "127.0.0.1:1")
		stdout, stderr, code := runCLI(t, args...)
		requireCode(t, code, exitUsage, stderr)
		if !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%v: stdout %q stderr %q, want %q", tc.args, stdout, stderr, tc.want)
		}
	}
}
