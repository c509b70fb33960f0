package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/vfs"
)

// produceOK runs sluice produce with stdin and fails the test unless it
// exits 0; it returns stdout and stderr.
func produceOK(t *testing.T, addr, topic, stdin string, args ...string) (string, string) {
	t.Helper()
	stdout, stderr, code := runCLIInput(t, stdin, append([]string{"produce", topic, "--brokers", addr}, args...)...)
	requireCode(t, code, exitOK, stderr)
	return stdout, stderr
}

// consumeOK runs sluice consume and fails the test unless it exits 0.
func consumeOK(t *testing.T, addr string, args ...string) string {
	t.Helper()
	stdout, stderr, code := runCLI(t, append([]string{"consume", "--brokers", addr}, args...)...)
	requireCode(t, code, exitOK, stderr)
	return stdout
}

// testAdmin is a kadm client on addr for checks the CLI does not make.
func testAdmin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	t.Cleanup(adm.Close)
	return adm
}

func parseProduceSummary(t *testing.T, stdout string) produceSummary {
	t.Helper()
	var s produceSummary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("stdout is not a JSON summary: %v\n%s", err, stdout)
	}
	return s
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("orders")
	// The last line has no newline and still counts; the line without the
	// delimiter gets a null key; '=' in a header value is kept.
	in := "k1:v1\nno delimiter here\nk3:v:3"
	stdout, stderr := produceOK(t, addr, topic, in, "-K", ":", "-H", "src=test", "-H", "expr=a=b")
	if stdout != "" {
		t.Errorf("text mode wrote to stdout: %q", stdout)
	}
	want := "sluice: wrote 3 records (26 bytes) to " + topic + ": partition 0 offsets 0-2\n"
	if stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}

	got := consumeOK(t, addr, topic, "-e", "-f", `%p:%o %K %k|%v|%h\n`)
	wantOut := "0:0 2 k1|v1|src=test,expr=a=b\n" +
		"0:1 -1 |no delimiter here|src=test,expr=a=b\n" +
		"0:2 2 k3|v:3|src=test,expr=a=b\n"
	if got != wantOut {
		t.Fatalf("consumed:\n%s\nwant:\n%s", got, wantOut)
	}
	// The default format is the value and a newline.
	if got := consumeOK(t, addr, topic, "-e"); got != "v1\nno delimiter here\nv:3\n" {
		t.Fatalf("default format printed %q", got)
	}
}

func TestProduceJSONSummary(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("json")
	produceOK(t, addr, topic, "x\n")
	stdout, stderr := produceOK(t, addr, topic, "a\nbb\n\nccc\n", "--json")
	if stderr != "" {
		t.Errorf("--json wrote to stderr: %q", stderr)
	}
	s := parseProduceSummary(t, stdout)
	want := produceSummary{Topic: topic, Records: 4, Bytes: 6,
		Partitions: []partitionWrite{{Partition: 0, FirstOffset: 1, LastOffset: 4, Records: 4}}}
	if s.Topic != want.Topic || s.Records != want.Records || s.Bytes != want.Bytes || s.Error != "" ||
		len(s.Partitions) != 1 || s.Partitions[0] != want.Partitions[0] {
		t.Fatalf("summary = %+v, want %+v", s, want)
	}
	// The empty line is an empty record, not skipped.
	if got := consumeOK(t, addr, topic, "-e", "--offset", "1", "-f", "[%v]"); got != "[a][bb][][ccc]" {
		t.Fatalf("consumed %q", got)
	}
	// -o json is the same as --json.
	stdout, _ = produceOK(t, addr, topic, "d\n", "-o", "json")
	if s := parseProduceSummary(t, stdout); s.Records != 1 || s.Partitions[0].FirstOffset != 5 {
		t.Fatalf("-o json summary = %+v", s)
	}
}

func TestProduceFixedKeyAndPartition(t *testing.T) {
	addr := startBroker(t, "num.partitions=3")
	topic := uniqueName("fixed")
	stdout, _ := produceOK(t, addr, topic, "a\nb\n", "--key", "K", "-p", "2", "--json")
	s := parseProduceSummary(t, stdout)
	if len(s.Partitions) != 1 || s.Partitions[0] != (partitionWrite{Partition: 2, FirstOffset: 0, LastOffset: 1, Records: 2}) {
		t.Fatalf("summary partitions = %+v, want partition 2 offsets 0-1", s.Partitions)
	}
	if got := consumeOK(t, addr, topic, "-e", "-f", `%p %k=%v\n`); got != "2 K=a\n2 K=b\n" {
		t.Fatalf("consumed %q", got)
	}
}

// -k is the key, as in kcat and rpk, and -K the delimiter, as in kcat.
func TestProduceKeyFlagsLikeKcat(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("keys")
	produceOK(t, addr, topic, "a\nb\n", "-k", "user-1")
	produceOK(t, addr, topic, "k3\tc\nd\n", "-K", `\t`)
	produceOK(t, addr, topic, "e\n", "-k", ":", "--key-literal")
	produceOK(t, addr, topic, "f\n", "-k", "a:b")
	got := consumeOK(t, addr, topic, "-e", "-f", `%K %k=%s\n`)
	want := "6 user-1=a\n6 user-1=b\n2 k3=c\n-1 =d\n1 :=e\n3 a:b=f\n"
	if got != want {
		t.Fatalf("consumed:\n%s\nwant:\n%s", got, want)
	}
}

// -k used to be the key delimiter: an old command line fails with exit 2
// and the new spelling rather than keying every record ":".
func TestProduceOldKeyDelimiterFailsLoudly(t *testing.T) {
	for _, tc := range []struct{ value, suggest string }{
		{":", ":"}, {",", ","}, {"|", "|"}, {"=", "="}, {";", ";"}, {"\t", `\t`}, {`\t`, `\t`}, {" ", " "},
	} {
		_, stderr, code := runCLIInput(t, "k:v\n", "produce", "t", "-k", tc.value, "--brokers", "127.0.0.1:1")
		requireCode(t, code, exitUsage, stderr)
		want := "sluice: -k sets the key now (as in kcat and rpk); for a key delimiter use -K '" + tc.suggest + "'"
		if !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "--key-literal") {
			t.Errorf("-k %q: stderr = %q, want it to start %q and name --key-literal", tc.value, stderr, want)
		}
	}
	// Keys that are ids or names are taken as they are.
	for _, key := range []string{"user-1", "a:b", "7", "x", "é"} {
		if !looksLikeDelimiter(key) {
			continue
		}
		t.Errorf("looksLikeDelimiter(%q) = true, want false", key)
	}
}

func TestProduceKeysHashToOnePartition(t *testing.T) {
	addr := startBroker(t, "num.partitions=4")
	topic := uniqueName("hash")
	var in strings.Builder
	for i := range 40 {
		in.WriteString("key" + strconv.Itoa(i%5) + ":" + strconv.Itoa(i) + "\n")
	}
	_, stderr := produceOK(t, addr, topic, in.String(), "-K", ":")
	if !strings.Contains(stderr, "wrote 40 records") {
		t.Fatalf("stderr = %q", stderr)
	}
	out := consumeOK(t, addr, topic, "-e", "-f", `%k %p\n`)
	partitionOf := map[string]string{}
	used := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, p, _ := strings.Cut(line, " ")
		if prev, ok := partitionOf[k]; ok && prev != p {
			t.Fatalf("key %s went to partitions %s and %s", k, prev, p)
		}
		partitionOf[k] = p
		used[p] = true
	}
	if len(partitionOf) != 5 || len(used) < 2 {
		t.Fatalf("5 keys over 4 partitions landed on %d partition(s): %v", len(used), partitionOf)
	}
	// Where the Java client's partitioner puts each key among 4
	// partitions: murmur2 (seed 0x9747b28c) & 0x7fffffff mod 4, computed
	// independently of franz-go.
	java := map[string]string{"key0": "2", "key1": "0", "key2": "3", "key3": "1", "key4": "1"}
	for k, want := range java {
		if partitionOf[k] != want {
			t.Errorf("%s went to partition %s, want %s as the Java client picks", k, partitionOf[k], want)
		}
	}
}

func TestProduceFromFileAndLongLines(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("file")
	path := filepath.Join(t.TempDir(), "in.txt")
	long := strings.Repeat("x", 300<<10) // far past bufio's 64 KiB default
	f, err := vfs.OS().Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("first\n"+long+"\nlast\n"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// Standard input is ignored when --file is given.
	_, stderr, code := runCLIInput(t, "not this\n", "produce", topic, "--brokers", addr, "-f", path)
	requireCode(t, code, exitOK, stderr)
	if got := consumeOK(t, addr, topic, "-e", "-f", `%S\n`); got != "5\n307200\n4\n" {
		t.Fatalf("value lengths %q", got)
	}

	_, stderr, code = runCLI(t, "produce", topic, "--brokers", addr, "-f", filepath.Join(t.TempDir(), "missing.txt"))
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "missing.txt") || !strings.Contains(stderr, "no such file") {
		t.Errorf("stderr = %q, want the missing file named", stderr)
	}
}

func TestProduceLineOverMaxMessageBytes(t *testing.T) {
	addr := startBroker(t, "message.max.bytes=2000")
	topic := uniqueName("small")
	in := "ok\n" + strings.Repeat("y", 5000) + "\nnever\n"
	stdout, stderr, code := runCLIInput(t, in, "produce", topic, "--brokers", addr, "--json")
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "line 2 is longer than the topic's max.message.bytes (2000 bytes)") {
		t.Errorf("stderr = %q", stderr)
	}
	s := parseProduceSummary(t, stdout)
	if s.Records != 1 || !strings.Contains(s.Error, "line 2") {
		t.Errorf("summary = %+v, want 1 record written and the error", s)
	}

	// A line under the limit whose record, with its framing, is over it
	// fails as the broker's limit says, naming the partition.
	in = "ok\n" + strings.Repeat("z", 1990) + "\n"
	_, stderr, code = runCLIInput(t, in, "produce", topic, "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "wrote 1 record (2 bytes)") ||
		!strings.Contains(stderr, `topic "`+topic+`" partition 0: MESSAGE_TOO_LARGE`) {
		t.Errorf("stderr = %q", stderr)
	}
}

func TestProduceAcksAndCompression(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("variants")
	var want strings.Builder
	written := int64(0)
	for _, acks := range []string{"all", "1", "0"} {
		for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
			line := acks + "/" + codec + "/" + strings.Repeat("compressible ", 20)
			want.WriteString(line + "\n")
			stdout, _ := produceOK(t, addr, topic, line+"\n", "--acks", acks, "-z", codec, "--json")
			s := parseProduceSummary(t, stdout)
			if s.Records != 1 {
				t.Fatalf("acks %s %s: summary %+v", acks, codec, s)
			}
			if unknown := s.Partitions[0].FirstOffset == -1; unknown != (acks == "0") {
				t.Errorf("acks %s: first_offset %d", acks, s.Partitions[0].FirstOffset)
			}
			written++
			if acks == "0" {
				// Unacknowledged: the next process's record could
				// overtake this one, so let it land first.
				waitForEndOffset(t, addr, topic, 0, written)
			}
		}
	}
	_, stderr := produceOK(t, addr, topic, "last\n", "--acks", "0")
	if !strings.Contains(stderr, "offsets unknown with --acks 0") {
		t.Errorf("acks 0 stderr = %q", stderr)
	}
	want.WriteString("last\n")
	// With acks 0 produce cannot know when the broker has appended, so
	// wait for the last record to be there before reading.
	waitForEndOffset(t, addr, topic, 0, 16)
	if got := consumeOK(t, addr, topic, "-e"); got != want.String() {
		t.Fatalf("consumed:\n%s\nwant:\n%s", got, want.String())
	}
}

func TestProduceUnknownTopicWithoutAutoCreate(t *testing.T) {
	addr := startBroker(t, "auto.create.topics.enable=false")
	topic := uniqueName("absent")
	start := time.Now()
	stdout, stderr, code := runCLIInput(t, "a\n", "produce", topic, "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v to fail; want it at once, not after retries", took)
	}
	if !strings.Contains(stderr, `topic "`+topic+`"`) || !strings.Contains(stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("stderr = %q, want the topic and UNKNOWN_TOPIC_OR_PARTITION", stderr)
	}
	if stdout != "" {
		t.Errorf("stdout = %q", stdout)
	}
	topics, err := testAdmin(t, addr).ListTopics(context.Background(), topic)
	if err != nil || topics.Has(topic) && topics[topic].Err == nil {
		t.Errorf("topic exists after a failed produce: %v %v", topics, err)
	}
}

func TestProduceErrors(t *testing.T) {
	addr := startBroker(t)
	existing := uniqueName("one-partition")
	produceOK(t, addr, existing, "a\n")

	_, stderr, code := runCLIInput(t, "a\n", "produce", existing, "--brokers", addr, "-p", "5")
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, `topic "`+existing+`" has 1 partition(s): partition 5 does not exist`) {
		t.Errorf("stderr = %q", stderr)
	}

	_, stderr, code = runCLIInput(t, "a\n", "produce", "bad topic!", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, `topic "bad topic!"`) || !strings.Contains(stderr, "INVALID_TOPIC_EXCEPTION") {
		t.Errorf("stderr = %q", stderr)
	}

	dead := deadBroker(t)
	_, stderr, code = runCLIInput(t, "a\n", "produce", "t", "--brokers", dead, "--timeout", "2s")
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "cannot reach "+dead+": connection refused") {
		t.Errorf("stderr = %q", stderr)
	}
}

func TestProduceUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"produce"}, "takes one TOPIC argument"},
		{[]string{"produce", "a", "b"}, "takes one TOPIC argument"},
		{[]string{"produce", "t", "-z", "brotli"}, `--compression "brotli"`},
		{[]string{"produce", "t", "--acks", "2"}, `--acks "2"`},
		{[]string{"produce", "t", "-H", "novalue"}, `--header "novalue": want KEY=VALUE`},
		{[]string{"produce", "t", "-H", "=v"}, `--header "=v"`},
		{[]string{"produce", "t", "--key", "k", "-K", ":"}, "-k/--key and -K/--key-delimiter conflict"},
		{[]string{"produce", "t", "-k", "k", "--key-delimiter", ":"}, "-k/--key and -K/--key-delimiter conflict"},
		{[]string{"produce", "t", "-K", ""}, "-K/--key-delimiter is empty"},
		{[]string{"produce", "t", "--key-literal"}, "--key-literal applies to -k/--key"},
		{[]string{"produce", "t", "-p", "-2"}, "--partition -2"},
		{[]string{"produce", "t", "-p", "x"}, "invalid argument"},
		{[]string{"produce", "t", "-o", "yaml"}, `-o "yaml"`},
		{[]string{"produce", "t", "--bogus"}, "unknown flag: --bogus"},
	}
	for _, tc := range cases {
		// An unreachable broker proves the command line is refused first.
		args := append(tc.args, "--brokers", "127.0.0.1:1")
		_, stderr, code := runCLI(t, args...)
		requireCode(t, code, exitUsage, stderr)
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: stderr = %q, want %q", tc.args, stderr, tc.want)
		}
	}
}

func TestProduceHelpHasExamples(t *testing.T) {
	for _, cmd := range []string{"produce", "consume"} {
		stdout, stderr, code := runCLI(t, cmd, "--help")
		requireCode(t, code, exitOK, stderr)
		if !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "sluice "+cmd+" orders") {
			t.Errorf("%s --help lacks examples:\n%s", cmd, stdout)
		}
	}
	if stdout, _, _ := runCLI(t, "--help"); !strings.Contains(stdout, "produce") || !strings.Contains(stdout, "consume") {
		t.Errorf("sluice --help does not list produce and consume:\n%s", stdout)
	}
}

// waitForEndOffset waits up to ten seconds for a partition's high watermark
// to reach want.
func waitForEndOffset(t *testing.T, addr, topic string, partition int32, want int64) {
	t.Helper()
	adm := testAdmin(t, addr)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(context.Background(), topic)
		o, _ := ends.Lookup(topic, partition)
		if err == nil && o.Offset >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%d end offset %d (err %v), want %d", topic, partition, o.Offset, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
