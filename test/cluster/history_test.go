package cluster

import (
	"fmt"
	"strings"
	"testing"
)

// logOf builds a partition from values at dense offsets from 0.
func logOf(values ...string) []Stored {
	out := make([]Stored, len(values))
	for i, v := range values {
		out[i] = Stored{int64(i), v}
	}
	return out
}

func TestHistoryCleanPasses(t *testing.T) {
	acks := []Ack{{1, 0, 0, 0}, {2, 0, 0, 1}, {1, 1, 0, 2}, {1, 2, 1, 0}}
	log := map[int32][]Stored{
		// p1-s3 was written but its ack was lost: allowed.
		0: logOf("p1-s0", "p2-s0", "p1-s1", "p1-s3"),
		1: logOf("p1-s2"),
	}
	if vs := CheckHistory(acks, log); len(vs) != 0 {
		t.Fatalf("clean history reported:\n%s", FormatViolations(vs))
	}
	if vs := CheckHistory(nil, map[int32][]Stored{}); len(vs) != 0 {
		t.Fatalf("empty history reported:\n%s", FormatViolations(vs))
	}
}

// Each case is a history that must fail, and the words its report must use.
func TestHistoryViolationsReported(t *testing.T) {
	cases := []struct {
		name string
		acks []Ack
		log  map[int32][]Stored
		want []string
	}{
		{"lost-tail", []Ack{{1, 0, 0, 0}, {1, 1, 0, 1}},
			map[int32][]Stored{0: logOf("p1-s0")},
			[]string{"lost: p1-s1 acknowledged at 0/1", "beyond the 1 records read"}},
		{"lost-overwritten", []Ack{{1, 0, 0, 0}, {1, 1, 0, 1}},
			map[int32][]Stored{0: logOf("p1-s0", "p2-s7")},
			[]string{"lost: p1-s1 acknowledged at 0/1 is not in the log (log there: p2-s7)"}},
		{"moved-offset", []Ack{{1, 0, 0, 0}, {1, 1, 0, 1}},
			map[int32][]Stored{0: logOf("p1-s0", "p2-s0", "p1-s1")},
			[]string{"moved: p1-s1 acknowledged at 0/1 is stored at 0/2"}},
		{"moved-partition", []Ack{{1, 0, 0, 0}},
			map[int32][]Stored{0: nil, 1: logOf("p1-s0")},
			[]string{"moved: p1-s0 acknowledged at 0/0 is stored at 1/0"}},
		{"duplicate-acked", []Ack{{1, 0, 0, 0}},
			map[int32][]Stored{0: logOf("p1-s0", "p1-s0")},
			[]string{"duplicate: p1-s0 stored at 0/0 and at 0/1"}},
		{"duplicate-unacked", nil,
			map[int32][]Stored{0: logOf("p3-s4"), 1: logOf("p3-s4")},
			[]string{"duplicate: p3-s4 stored at 0/0 and at 1/0"}},
		{"reordered", []Ack{{1, 0, 0, 1}, {1, 1, 0, 0}},
			map[int32][]Stored{0: logOf("p1-s1", "p1-s0")},
			[]string{"reordered: partition 0: producer 1's seq 0 at offset 1 follows its seq 1 at offset 0"}},
		{"offsets", nil,
			map[int32][]Stored{0: {{0, "p1-s0"}, {0, "p1-s1"}}},
			[]string{"offsets: partition 0: offset 0 read after 0"}},
		{"foreign", nil,
			map[int32][]Stored{0: logOf("hello")},
			[]string{`foreign: 0/0 holds "hello"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			report := FormatViolations(CheckHistory(c.acks, c.log))
			if report == "" {
				t.Fatal("no violation reported")
			}
			for _, w := range c.want {
				if !strings.Contains(report, w) {
					t.Errorf("report lacks %q:\n%s", w, report)
				}
			}
		})
	}
}

func TestHistoryReportIsBounded(t *testing.T) {
	var acks []Ack
	for i := 0; i < 500; i++ {
		acks = append(acks, Ack{1, int64(i), 0, int64(i)})
	}
	vs := CheckHistory(acks, map[int32][]Stored{0: logOf("p1-s0")})
	if len(vs) != maxViolations+1 {
		t.Fatalf("%d violations reported, want %d and a count", len(vs), maxViolations+1)
	}
	if last := vs[len(vs)-1].String(); last != "more: 499 violations in all (lost=499)" {
		t.Errorf("last line %q", last)
	}
	if first := vs[0].String(); !strings.HasPrefix(first, "lost: p1-s1 ") {
		t.Errorf("first line %q, want the lowest lost offset first", first)
	}
}

func TestHistoryValueRoundTrip(t *testing.T) {
	for _, v := range []string{"p0-s0", "p12-s345"} {
		p, s, ok := parseValue(v)
		if !ok || Value(p, s) != v {
			t.Errorf("%s parsed as %d %d %v", v, p, s, ok)
		}
	}
	for _, v := range []string{"", "p1", "p1-s", "p1-s2x", "x1-s2", fmt.Sprint("p1-s02")} {
		if _, _, ok := parseValue(v); ok {
			t.Errorf("%q parsed", v)
		}
	}
}
