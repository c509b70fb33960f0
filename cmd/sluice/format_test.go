package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func testRecord() *kgo.Record {
	return &kgo.Record{
		Topic:     "orders",
		Partition: 2,
		Offset:    41,
		Timestamp: time.UnixMilli(1700000000123),
		Key:       []byte("k1"),
		Value:     []byte("hello"),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("x=y")}},
	}
}

func TestFormatRecordVerbs(t *testing.T) {
	f, err := parseRecordFormat(`%t/%p/%o %T %k=%v %K %S [%h] 100%%\t\\\q\n`)
	if err != nil {
		t.Fatal(err)
	}
	got := string(f.appendRecord(nil, testRecord()))
	want := "orders/2/41 1700000000123 k1=hello 2 5 [a=1,b=x=y] 100%\t\\\\q\n"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}

	nulls := testRecord()
	nulls.Key, nulls.Value, nulls.Headers = nil, []byte{}, nil
	got = string(f.appendRecord(nil, nulls))
	want = "orders/2/41 1700000000123 = -1 0 [] 100%\t\\\\q\n"
	if got != want {
		t.Fatalf("null key, empty value: got %q, want %q", got, want)
	}
}

// kcat's verbs (%s, %R, \xHH) and rpk's %d work as those tools print them.
func TestFormatKcatAndRpkVerbs(t *testing.T) {
	cases := []struct{ template, want string }{
		{`%s|%S|%k|%K`, "hello|5|k1|2"},
		{`%t %p %o %T`, "orders 2 41 1700000000123"},
		{`%d`, "1700000000123"},
		{`%d{2006-01-02T15:04:05Z07:00}`, "2023-11-14T22:13:20Z"},
		{`%d{go[2006-01-02 15:04:05.000]}!`, "2023-11-14 22:13:20.123!"},
		{`%d{15:04}%s`, "22:13hello"},
		{`%R%s`, "\x00\x00\x00\x05hello"},
		{`\x41\x7e\xzz`, "A~\\xzz"},
		{`[%h]`, "[a=1,b=x=y]"},
	}
	for _, tc := range cases {
		f, err := parseRecordFormat(tc.template)
		if err != nil {
			t.Errorf("%q: %v", tc.template, err)
			continue
		}
		if got := string(f.appendRecord(nil, testRecord())); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.template, got, tc.want)
		}
	}
	nullValue := testRecord()
	nullValue.Value = nil
	f, _ := parseRecordFormat(`%R`)
	if got := f.appendRecord(nil, nullValue); !bytes.Equal(got, []byte{0xff, 0xff, 0xff, 0xff}) {
		t.Errorf("%%R of a null value = %x, want ffffffff", got)
	}
}

func TestFormatRejectsBadTemplates(t *testing.T) {
	cases := []struct{ template, want string }{
		{"%x", "unknown verb %x (want one of %s %v"},
		{"value %", "ends in a lone %"},
		{"%v %Z", "unknown verb %Z"},
		{"%d{2006", "%d{ has no closing }"},
		{"%d{}", "%d{} has an empty layout"},
		{"%d{go[]}", "%d{} has an empty layout"},
	}
	for _, tc := range cases {
		_, err := parseRecordFormat(tc.template)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseRecordFormat(%q) = %v, want an error containing %q", tc.template, err, tc.want)
		}
	}
}

func TestFormatJSONRecordEncodings(t *testing.T) {
	r := testRecord()
	r.Key = nil
	r.Value = []byte{0xff, 0xfe, 'a'}
	r.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte("<ok>")}, {Key: "n"}}

	var out bytes.Buffer
	p := newRecordPrinter(&out, true, recordFormat{}, binaryAuto)
	if err := p.print(r); err != nil {
		t.Fatal(err)
	}
	if err := p.flush(); err != nil {
		t.Fatal(err)
	}
	line := out.String()
	if strings.Count(line, "\n") != 1 || !strings.Contains(line, `"<ok>"`) {
		t.Fatalf("want one line with HTML left unescaped, got %q", line)
	}
	var got jsonRecord
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Key != nil || got.KeyEncoding != "" {
		t.Errorf("null key came out as %v/%q", got.Key, got.KeyEncoding)
	}
	if got.Value == nil || *got.Value != "//5h" || got.ValueEncoding != "base64" {
		t.Errorf("invalid UTF-8 value came out as %v/%q, want base64 //5h", got.Value, got.ValueEncoding)
	}
	if got.Topic != "orders" || got.Partition != 2 || got.Offset != 41 || got.Timestamp != 1700000000123 {
		t.Errorf("position fields wrong: %+v", got)
	}
	if len(got.Headers) != 2 || *got.Headers[0].Value != "<ok>" || got.Headers[1].Value != nil {
		t.Errorf("headers = %+v", got.Headers)
	}

	all := newJSONRecord(testRecord(), binaryBase64)
	if *all.Key != "azE=" || all.KeyEncoding != "base64" || *all.Value != "aGVsbG8=" || all.Headers[0].ValueEncoding != "base64" {
		t.Errorf("--binary base64 left something unencoded: %+v", all)
	}
}

func TestConsumeParseOffsetSpec(t *testing.T) {
	ts := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	cases := []struct {
		in   string
		want offsetSpec
	}{
		{"start", offsetSpec{kind: offsetStart}},
		{"beginning", offsetSpec{kind: offsetStart}},
		{"end", offsetSpec{kind: offsetEnd}},
		{"17", offsetSpec{kind: offsetExact, n: 17}},
		{"-3", offsetSpec{kind: offsetFromEnd, n: 3}},
		{"-0", offsetSpec{kind: offsetEnd}},
		{"@1700000000000", offsetSpec{kind: offsetTime, n: 1700000000000}},
		{"@2024-05-01T00:00:00Z", offsetSpec{kind: offsetTime, n: ts}},
		{"@2024-05-01T02:00:00+02:00", offsetSpec{kind: offsetTime, n: ts}},
		// kcat's and rpk's spellings.
		{"earliest", offsetSpec{kind: offsetStart}},
		{"oldest", offsetSpec{kind: offsetStart}},
		{"latest", offsetSpec{kind: offsetEnd}},
		{"newest", offsetSpec{kind: offsetEnd}},
		{"stored", offsetSpec{kind: offsetStored}},
		{"+3", offsetSpec{kind: offsetFromStart, n: 3}},
		{"s@1700000000000", offsetSpec{kind: offsetTime, n: 1700000000000}},
		{"s@2024-05-01T00:00:00Z", offsetSpec{kind: offsetTime, n: ts}},
	}
	for _, tc := range cases {
		got, err := parseOffsetSpec(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseOffsetSpec(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "first", "1.5", "@", "@yesterday", "@-5", "s@", "e@1700000000000", "json", "text"} {
		if _, err := parseOffsetSpec(bad); err == nil || exitCode(err) != exitUsage {
			t.Errorf("parseOffsetSpec(%q) = %v, want a usage error", bad, err)
		}
	}
}

func TestConsumeResolveOffsetBoundsWithinLog(t *testing.T) {
	b := partitionBounds{logStart: 10, highWatermark: 20, atTime: 15}
	cases := []struct {
		spec offsetSpec
		want int64
	}{
		{offsetSpec{kind: offsetStart}, 10},
		{offsetSpec{kind: offsetEnd}, 20},
		{offsetSpec{kind: offsetExact, n: 12}, 12},
		{offsetSpec{kind: offsetExact, n: 3}, 10},
		{offsetSpec{kind: offsetExact, n: 99}, 20},
		{offsetSpec{kind: offsetFromEnd, n: 4}, 16},
		{offsetSpec{kind: offsetFromEnd, n: 40}, 10},
		{offsetSpec{kind: offsetTime, n: 1}, 15},
		{offsetSpec{kind: offsetStored}, 10},
		{offsetSpec{kind: offsetFromStart, n: 3}, 13},
		{offsetSpec{kind: offsetFromStart, n: 30}, 20},
	}
	for _, tc := range cases {
		if got := tc.spec.resolve(b); got != tc.want {
			t.Errorf("%+v.resolve = %d, want %d", tc.spec, got, tc.want)
		}
	}
}

func TestProduceScanRecordLines(t *testing.T) {
	sc := bufio.NewScanner(strings.NewReader("a\r\n\nb\nlast"))
	sc.Split(scanRecordLines)
	var got []string
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	want := []string{"a\r", "", "b", "last"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("lines = %q, want %q", got, want)
	}
}
