package console

import (
	"bytes"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/record"
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
	r := recordView{r: &record.Record{Key: []byte("order-17"), Value: []byte(`{"total":3}`), Headers: []record.RecordHeader{{Key: "trace", Value: []byte("abc-123")}}}}
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

// batches builds consecutive batches: a gzip batch of offsets 0-2, a
// control batch at 3, an uncompressed batch of 4-5, then the first half of
// a batch at 6 (a fetch response may end inside one).
func batches(t *testing.T) []byte {
	t.Helper()
	var data []byte
	var err error
	add := func(opts record.BatchOptions, recs ...record.Record) {
		opts.ProducerID = -1
		if data, err = record.AppendBatch(data, opts, recs); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(key string) record.Record { return record.Record{Key: []byte(key), Value: []byte("v-" + key)} }
	add(record.BatchOptions{BaseOffset: 0, Codec: record.CodecGzip, FirstTimestamp: 1000}, rec("a"), rec("b"), rec("c"))
	add(record.BatchOptions{BaseOffset: 3, Control: true}, record.Record{Key: []byte{0, 0, 0, 0}, Value: []byte{0, 0, 0, 0, 0, 0}})
	add(record.BatchOptions{BaseOffset: 4}, rec("d"), rec("e"))
	whole := len(data)
	add(record.BatchOptions{BaseOffset: 6}, rec("f"))
	return data[:whole+(len(data)-whole)/2]
}

func TestConsoleVisitBatches(t *testing.T) {
	data := batches(t)
	var keys []string
	next, err := visitBatches(data, 1, 100, func(v recordView) bool {
		keys = append(keys, fmt.Sprintf("%d:%s@%d", v.offset, v.r.Key, v.timestampMs))
		return true
	})
	if err != nil || next != 6 {
		t.Fatalf("visitBatches = %d, %v; want 6 (the cut batch left for the next fetch)", next, err)
	}
	if got := strings.Join(keys, " "); got != "1:b@1000 2:c@1000 4:d@0 5:e@0" {
		t.Fatalf("visited %s", got)
	}
	// until bounds the range, and visit can stop the walk.
	keys = keys[:0]
	if _, err := visitBatches(data, 0, 5, func(v recordView) bool {
		keys = append(keys, string(v.r.Key))
		return len(keys) < 3
	}); err != nil || strings.Join(keys, "") != "abc" {
		t.Fatalf("stopped walk visited %v, %v", keys, err)
	}
	// A flipped byte inside the CRC range is caught.
	bad := bytes.Clone(data)
	bad[len(bad)/3] ^= 0xff
	if _, err := visitBatches(bad, 0, 100, func(recordView) bool { return true }); err == nil {
		t.Fatal("a corrupt batch was decoded")
	}
}

func TestConsoleVisitBatchesBoundsDecompression(t *testing.T) {
	// 12 MiB of zeros compresses to a few KiB and would inflate past the
	// 8 MiB bound.
	bomb, err := record.AppendBatch(nil, record.BatchOptions{Codec: record.CodecZstd, ProducerID: -1},
		[]record.Record{{Value: make([]byte, 12<<20)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(bomb) > 1<<20 {
		t.Fatalf("the bomb is %d bytes compressed", len(bomb))
	}
	_, err = visitBatches(bomb, 0, 100, func(recordView) bool { return true })
	if !errors.Is(err, record.ErrDecompressedTooLarge) {
		t.Fatalf("err = %v, want ErrDecompressedTooLarge", err)
	}
}

func TestConsoleHostAllowed(t *testing.T) {
	c := &Console{opts: Options{AllowedHosts: []string{"sluice.example.org"}}}
	for host, want := range map[string]bool{
		"127.0.0.1:9644":         true,
		"[::1]:9644":             true,
		"10.1.2.3":               true,
		"localhost:9644":         true,
		"LOCALHOST":              true,
		"app.localhost:1":        true,
		"sluice.example.org:80":  true,
		"sluice.example.org.":    true,
		"evil.example:9644":      false, // a rebinding domain
		"localhost.evil.example": false,
		"":                       false,
	} {
		if got := c.hostAllowed(host); got != want {
			t.Errorf("hostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}
