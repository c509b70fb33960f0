package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/vfs"
)

// consumeRecords reads a topic's first n records with kgo, so nulls,
// headers and timestamps are seen as the broker stored them.
func consumeRecords(t *testing.T, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s", len(out), n, topic)
		}
		fetches.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if len(out) != n {
		t.Fatalf("read %d records from %s, want %d", len(out), topic, n)
	}
	return out
}

// show writes a record's key, value and headers with nulls visible.
func show(r *kgo.Record) string {
	b := func(v []byte) string {
		if v == nil {
			return "null"
		}
		return fmt.Sprintf("%q", v)
	}
	s := b(r.Key) + "=" + b(r.Value)
	for _, h := range r.Headers {
		s += " " + h.Key + ":" + b(h.Value)
	}
	return s
}

func requireRecords(t *testing.T, got []*kgo.Record, want ...string) {
	t.Helper()
	for i, r := range got {
		if i >= len(want) || show(r) != want[i] {
			var all []string
			for _, r := range got {
				all = append(all, show(r))
			}
			t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(all, "\n"), strings.Join(want, "\n"))
		}
	}
}

// -Z makes an empty key or value null: "k2:" is a tombstone for k2.
// Without it an empty value stays empty, not null.
func TestProduceNullEmptyTombstones(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("tombstones")
	produceOK(t, addr, topic, "k1:v1\nk2:\n:v3\n\nnosep\n", "-K", ":", "-Z")
	produceOK(t, addr, topic, "k2:\n\n", "-K", ":")
	produceOK(t, addr, topic, "\n", "-k", "fixed", "-Z")
	requireRecords(t, consumeRecords(t, addr, topic, 8),
		`"k1"="v1"`, `"k2"=null`, `null="v3"`, `null=null`, `null="nosep"`,
		`"k2"=""`, `null=""`,
		`"fixed"=null`)
	// consume shows the tombstone as null too.
	out := consumeOK(t, addr, topic, "-e", "--offset", "1", "-n", "1", "--json")
	if !strings.Contains(out, `"value":null`) {
		t.Errorf("consume --json of a tombstone: %s", out)
	}
}

// -D ends records at any separator; records may hold newlines, carriage
// returns and any byte, and -K still splits them.
func TestProduceDelimiter(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("delim")
	produceOK(t, addr, topic, "a\nb\x00c\r\n\x00\xff\xfe", "-D", `\0`)
	produceOK(t, addr, topic, "k:v1||k2:v||2||", "-D", "||", "-K", ":")
	produceOK(t, addr, topic, "x\x1ey\x1e", "-D", `\x1e`)
	produceOK(t, addr, topic, "p\tq\t", "-D", `\t`, "-Z")
	requireRecords(t, consumeRecords(t, addr, topic, 10),
		`null="a\nb"`, `null="c\r\n"`, `null="\xff\xfe"`,
		`"k"="v1"`, `"k2"="v"`, `null="2"`,
		`null="x"`, `null="y"`,
		`null="p"`, `null="q"`)

	// A record over max.message.bytes is named as a record, not a line.
	small := startBroker(t, "message.max.bytes=1000")
	in := "ok\x00" + strings.Repeat("y\n", 1000) + "\x00"
	_, stderr, code := runCLIInput(t, in, "produce", topic, "--brokers", small, "-D", `\0`)
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, "record 2 is longer than the topic's max.message.bytes (1000 bytes)") {
		t.Errorf("stderr = %q", stderr)
	}
}

// --format reads key, value, headers and timestamps by a template, as rpk
// produce -f does.
func TestProduceFormatTemplate(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("template")
	in := "1714564800000 k1 src=web v=1 hello world\n" +
		"2024-05-01T12:00:01.5Z k2 src=cli a= \n" +
		"0  x=y z=w last"
	produceOK(t, addr, topic, in, "--format", `%T %k %H %H %v\n`, "-H", "job=7", "-Z")
	recs := consumeRecords(t, addr, topic, 3)
	requireRecords(t, recs,
		`"k1"="hello world" job:"7" src:"web" v:"1"`,
		`"k2"=null job:"7" src:"cli" a:""`,
		`null="last" job:"7" x:"y" z:"w"`)
	for i, want := range []int64{1714564800000, 1714564801500, 0} {
		if got := recs[i].Timestamp.UnixMilli(); got != want {
			t.Errorf("record %d timestamp %d, want %d", i, got, want)
		}
	}

	// A literal prefix, a multi-byte separator, %% and values with spaces
	// and newlines; without %k, -k keys every record.
	topic2 := uniqueName("template")
	produceOK(t, addr, topic2, "@a\nb%;;@c%;;", "--format", `@%v%%;;`, "-k", "K")
	requireRecords(t, consumeRecords(t, addr, topic2, 2), `"K"="a\nb"`, `"K"="c"`)

	// Input that does not match stops at the record, exit 1, after
	// writing the records before it.
	stdout, stderr, code := runCLIInput(t, "k1 v1\nnospace\n", "produce", topic2, "--brokers", addr,
		"--format", `%k %v\n`, "--json")
	requireCode(t, code, exitError, stderr)
	if !strings.Contains(stderr, `record 2: input ends inside the record: %k has no " " after it`) {
		t.Errorf("stderr = %q", stderr)
	}
	if s := parseProduceSummary(t, stdout); s.Records != 1 {
		t.Errorf("summary %+v, want 1 record written", s)
	}
	for _, tc := range []struct{ in, want string }{
		{"x,a=b,v\n", `record 1: %T: timestamp "x"`},
		{"1,noequals,v\n", `record 1: %H "noequals": want NAME=VALUE`},
		{"#1,a=b,v\n", `record 1: want the record to start with "@"`},
	} {
		format := `%T,%H,%v\n`
		if strings.HasPrefix(tc.in, "#") {
			format = `@%T,%H,%v\n`
		}
		_, stderr, code := runCLIInput(t, tc.in, "produce", topic2, "--brokers", addr, "--format", format)
		requireCode(t, code, exitError, stderr)
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("input %q: stderr = %q, want %q", tc.in, stderr, tc.want)
		}
	}
}

// --timestamp stamps every record, as milliseconds or RFC 3339.
func TestProduceTimestampFlag(t *testing.T) {
	addr := startBroker(t)
	topic := uniqueName("stamped")
	produceOK(t, addr, topic, "a\nb\n", "--timestamp", "1000")
	produceOK(t, addr, topic, "c\n", "--timestamp", "2024-05-01T12:00:00+02:00")
	before := time.Now().Add(-time.Minute)
	produceOK(t, addr, topic, "d\n")
	recs := consumeRecords(t, addr, topic, 4)
	for i, want := range []int64{1000, 1000, 1714557600000} {
		if got := recs[i].Timestamp.UnixMilli(); got != want {
			t.Errorf("record %d timestamp %d, want %d", i, got, want)
		}
	}
	if recs[3].Timestamp.Before(before) {
		t.Errorf("record without --timestamp stamped %v, want now", recs[3].Timestamp)
	}
	if got := consumeOK(t, addr, topic, "-e", "-n", "1", "-f", `%T\n`); got != "1000\n" {
		t.Errorf("consume %%T = %q", got)
	}
}

// --value-file writes each file's bytes as one record's value, exactly.
func TestProduceValueFiles(t *testing.T) {
	addr := startBroker(t, "message.max.bytes=5000")
	topic := uniqueName("files")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		f, err := vfs.OS().Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b, 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return path
	}
	binary := []byte{0, 1, '\n', 0xff, '\r', '\n', 0}
	a := write("a.bin", binary)
	empty := write("empty.bin", nil)
	// Standard input is not read.
	produceOK(t, addr, topic, "not this\n", "--value-file", a, "--value-file", empty, "-k", "batch")
	produceOK(t, addr, topic, "", "--value-file", empty, "-k", "gone", "-Z", "--timestamp", "5")
	recs := consumeRecords(t, addr, topic, 3)
	requireRecords(t, recs, `"batch"="\x00\x01\n\xff\r\n\x00"`, `"batch"=""`, `"gone"=null`)
	if !bytes.Equal(recs[0].Value, binary) || recs[2].Timestamp.UnixMilli() != 5 {
		t.Errorf("value %q timestamp %v", recs[0].Value, recs[2].Timestamp)
	}

	// A missing file fails before anything is written; so does a
	// directory. A file over the limit fails naming it.
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.bin"), "no such file"},
		{dir, "is a directory"},
		{write("big.bin", make([]byte, 6000)), "big.bin is longer than the topic's max.message.bytes (5000 bytes)"},
	} {
		stdout, stderr, code := runCLI(t, "produce", topic, "--brokers", addr, "--value-file", a, "--value-file", tc.path, "--json")
		requireCode(t, code, exitError, stderr)
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: stderr = %q, want %q", tc.path, stderr, tc.want)
		}
		if strings.Contains(tc.want, "max.message.bytes") {
			if s := parseProduceSummary(t, stdout); s.Records != 1 {
				t.Errorf("summary %+v, want the first file written", s)
			}
		} else if stdout != "" {
			t.Errorf("stdout = %q, want nothing written", stdout)
		}
	}
}

func TestProduceInputUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-D", ""}, "-D/--delimiter is empty"},
		{[]string{"-D", `\q`}, `-D/--delimiter "\\q": unknown escape \q`},
		{[]string{"-D", `\x4`}, `\x wants two hex digits`},
		{[]string{"-D", `\xzz`}, `\x wants two hex digits`},
		{[]string{"-D", `a\`}, "lone backslash"},
		{[]string{"--format", `%k %v`}, `ends in %v: end it with the record separator`},
		{[]string{"--format", `%k%v\n`}, "%v follows %k with nothing between"},
		{[]string{"--format", `%x\n`}, "unknown verb %x"},
		{[]string{"--format", `%k %k\n`}, "%k appears twice"},
		{[]string{"--format", `%T %H\n`}, "has neither %k nor %v"},
		{[]string{"--format", `%v\n%`}, "lone %"},
		{[]string{"--format", ""}, "has neither %k nor %v"},
		{[]string{"--format", `%k %v\n`, "-K", ":"}, "--format and -K/--key-delimiter conflict"},
		{[]string{"--format", `%k %v\n`, "-D", `\0`}, "--format and -D/--delimiter conflict"},
		{[]string{"--format", `%k %v\n`, "-k", "x"}, "--format has %k and -k/--key gives a fixed key"},
		{[]string{"--format", `%T %v\n`, "--timestamp", "1"}, "--format has %T and --timestamp"},
		{[]string{"--value-file", "a", "-f", "b"}, "--value-file and -f/--file conflict"},
		{[]string{"--value-file", "a", "-K", ":"}, "--value-file and -K/--key-delimiter conflict"},
		{[]string{"--value-file", "a", "-D", ":"}, "--value-file and -D/--delimiter conflict"},
		{[]string{"--value-file", "a", "--format", `%v\n`}, "--value-file and --format conflict"},
		{[]string{"--value-file", ""}, "--value-file is empty"},
		{[]string{"--timestamp", "yesterday"}, `--timestamp: timestamp "yesterday"`},
		{[]string{"--timestamp", "-5"}, `--timestamp: timestamp "-5"`},
		{[]string{"--timestamp", "1960-01-01T00:00:00Z"}, "before 1970"},
		{[]string{"-Z=maybe"}, "invalid argument"},
	}
	for _, tc := range cases {
		// An unreachable broker proves the command line is refused first.
		args := append(append([]string{"produce", "t"}, tc.args...), "--brokers", "127.0.0.1:1")
		_, stderr, code := runCLI(t, args...)
		requireCode(t, code, exitUsage, stderr)
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: stderr = %q, want %q", tc.args, stderr, tc.want)
		}
	}
}

func TestProduceParseDelimiterAndTemplate(t *testing.T) {
	for in, want := range map[string]string{
		`\n`: "\n", `\t`: "\t", `\r\n`: "\r\n", `\0`: "\x00", `\x00`: "\x00", `\xFF`: "\xff", `\\`: `\`, "||": "||", "a\tb": "a\tb",
	} {
		got, err := parseDelimiter("-D", in)
		if err != nil || string(got) != want {
			t.Errorf("parseDelimiter(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	tmpl, err := parseInputTemplate(`<%k|%H|%v>\r\n`)
	if err != nil {
		t.Fatal(err)
	}
	if string(tmpl.prefix) != "<" || len(tmpl.fields) != 3 || string(tmpl.fields[2].end) != ">\r\n" ||
		!tmpl.hasKey || tmpl.hasTS {
		t.Errorf("template = %+v", tmpl)
	}
}
