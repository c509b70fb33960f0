package console

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestConsoleShowBytes(t *testing.T) {
	cases := []struct {
		in   []byte
		kind string
		text string
	}{
		{nil, "null", ""},
		{[]byte{}, "empty", ""},
		{[]byte("hello\tworld"), "text", "hello\tworld"},
		{[]byte(`{"a":1,"b":[2]}`), "json", "{\n  \"a\": 1,\n  \"b\": [\n    2\n  ]\n}"},
		{[]byte("42"), "text", "42"}, // a bare JSON number reads better as text
		{[]byte{0x00, 0xff, 0x10}, "hex", "00000000  00 ff 10"},
	}
	for _, c := range cases {
		got := showBytes(c.in)
		if got.Kind != c.kind || !strings.HasPrefix(got.Text, c.text) {
			t.Errorf("showBytes(%q) = %s %q, want %s %q", c.in, got.Kind, got.Text, c.kind, c.text)
		}
	}
	big := showBytes([]byte(strings.Repeat("x", maxShownBytes+10)))
	if !big.Truncated || len(big.Text) != maxShownBytes || big.Size != maxShownBytes+10 {
		t.Errorf("a large value: truncated=%v shown=%d size=%d", big.Truncated, len(big.Text), big.Size)
	}
}

func TestConsoleParseTimestamp(t *testing.T) {
	for in, want := range map[string]int64{
		"1700000000000":               1700000000000,
		"2026-01-02T03:04:05Z":        1767323045000,
		"2026-01-02T03:04:05":         1767323045000,
		"2026-01-02T03:04":            1767323040000,
		"2026-01-02T03:04:05.5+01:00": 1767319445500,
	} {
		got, err := parseTimestamp(in)
		if err != nil || got != want {
			t.Errorf("parseTimestamp(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseTimestamp("yesterday"); err == nil {
		t.Error("parseTimestamp(yesterday) succeeded")
	}
}

func TestConsoleBrowseMatches(t *testing.T) {
	r := &kgo.Record{Key: []byte("order-17"), Value: []byte(`{"total":3}`), Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("abc-123")}}}
	cases := []struct {
		q    browseQuery
		want bool
	}{
		{browseQuery{}, true},
		{browseQuery{Key: "der-1"}, true},
		{browseQuery{Key: "order-18"}, false},
		{browseQuery{Value: "total"}, true},
		{browseQuery{Header: "trace"}, true},
		{browseQuery{Header: "trace=c-12"}, true},
		{browseQuery{Header: "trace=zzz"}, false},
		{browseQuery{Header: "span"}, false},
		{browseQuery{Key: "order", Value: "nope"}, false},
	}
	for _, c := range cases {
		if got := c.q.matches(r); got != c.want {
			t.Errorf("%+v matches = %v, want %v", c.q, got, c.want)
		}
	}
}

func TestConsoleParseResetQuery(t *testing.T) {
	get := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	q, err := parseResetQuery("g", get(map[string]string{"mode": "offset", "value": "12", "topic": "t", "partition": "3"}))
	if err != nil || q.Partition != 3 || q.Topic != "t" {
		t.Fatalf("parse = %+v, %v", q, err)
	}
	for _, bad := range []map[string]string{
		{"mode": "sideways"},
		{"mode": "offset", "value": "-1"},
		{"mode": "timestamp", "value": "soon"},
		{"mode": "earliest", "partition": "x"},
	} {
		if _, err := parseResetQuery("g", get(bad)); err == nil {
			t.Errorf("parseResetQuery(%v) succeeded", bad)
		}
	}
}

func TestConsolePager(t *testing.T) {
	r := httptest.NewRequest("GET", "/topics?q=a&page=3", nil)
	p := newPager(r, 250, 100)
	if p.Page != 3 || p.First != 200 || p.Last != 250 || p.Next != "" || !strings.Contains(string(p.Prev), "page=2") || !strings.Contains(string(p.Prev), "q=a") {
		t.Fatalf("pager = %+v", p)
	}
	if p := newPager(httptest.NewRequest("GET", "/topics?page=99", nil), 0, 100); p.Page != 1 || p.First != 0 || p.Last != 0 {
		t.Fatalf("empty pager = %+v", p)
	}
}

func TestConsoleSameHost(t *testing.T) {
	if !sameHost("http://127.0.0.1:9644", "127.0.0.1:9644") || sameHost("http://evil.example", "127.0.0.1:9644") || sameHost("null", "localhost:9644") {
		t.Fatal("sameHost disagrees")
	}
}

func TestConsoleBackwardWindow(t *testing.T) {
	cases := []struct {
		bytes   int64
		records int
		want    int64
	}{
		{0, 0, maxBackwardWindow},                          // nothing read: step back as far as allowed
		{1000, 100, maxBackwardWindow},                     // small records: capped at the maximum
		{64 << 20, 1024, backwardWindowBytes / (64 << 10)}, // 64 KiB records: 4 MiB per window
		{16 << 20, 16, firstBackwardWindow},                // 1 MiB records: the floor
		{64 << 20, 1, firstBackwardWindow},                 // never below the first window
	}
	for _, c := range cases {
		if got := nextBackwardWindow(c.bytes, c.records); got != c.want {
			t.Errorf("nextBackwardWindow(%d, %d) = %d, want %d", c.bytes, c.records, got, c.want)
		}
	}
	// The first window fits the byte cap even with 1 MiB batches, so
	// every newest-first request moves.
	if firstBackwardWindow*(maxFetchResponseBytes+(64<<10)) >= maxScanBytes {
		t.Fatal("the first backward window can exceed the scan's byte cap")
	}
}
