package console

import (
	"fmt"
	"testing"
)

func TestSamplesRingKeepsNewest(t *testing.T) {
	r := newRing[int](3)
	if got := r.items(); len(got) != 0 {
		t.Fatalf("empty ring items = %v", got)
	}
	for i := 1; i <= 5; i++ {
		r.push(i)
	}
	if got := fmt.Sprint(r.items()); got != "[3 4 5]" {
		t.Fatalf("items = %s, want [3 4 5]", got)
	}
}

func TestSamplesThroughputRates(t *testing.T) {
	s := newSampler(4, 4)
	s.addThroughput(1000, map[string]topicTotals{"a": {records: 100, bytes: 1000}})
	first := s.throughputPoints()
	if len(first) != 1 || first[0].RecordsIn != -1 || first[0].BytesIn != -1 {
		t.Fatalf("first sample = %+v, want unknown rates", first)
	}
	// Two seconds later: a grew by 50 records and 4000 bytes; b is new
	// (a baseline only).
	s.addThroughput(3000, map[string]topicTotals{"a": {records: 150, bytes: 5000}, "b": {records: 9, bytes: 90}})
	p := s.throughputPoints()[1]
	if p.RecordsIn != 25 || p.BytesIn != 2000 {
		t.Fatalf("rates = %+v, want 25 records/s and 2000 bytes/s", p)
	}
	rate, size, ok := s.topicStats("a")
	if !ok || rate.RecordsIn != 25 || size != 5000 {
		t.Fatalf("topicStats(a) = %+v %d %v", rate, size, ok)
	}
	if rate, _, _ := s.topicStats("b"); rate.RecordsIn != -1 {
		t.Fatalf("a topic's first sample has rate %v, want unknown", rate.RecordsIn)
	}
	// Retention shrank a: bytes in is zero, not negative.
	s.addThroughput(4000, map[string]topicTotals{"a": {records: 150, bytes: 100}})
	if p := s.throughputPoints()[2]; p.BytesIn != 0 || p.RecordsIn != 0 {
		t.Fatalf("after shrinking, rates = %+v, want 0", p)
	}
}

func TestSamplesLagHistoryBoundedAndPruned(t *testing.T) {
	s := newSampler(4, 2)
	s.addLag(1000, map[string]groupTotals{"g": {lag: 5, committed: 10}, "h": {lag: 1, committed: 0}})
	s.addLag(2000, map[string]groupTotals{"g": {lag: 7, committed: 30}, "h": {lag: 1, committed: 0}})
	s.addLag(3000, map[string]groupTotals{"g": {lag: 2, committed: 40}})
	got := s.lagPoints("g")
	if fmt.Sprint(got) != "[{2000 7} {3000 2}]" {
		t.Fatalf("lag points = %v, want the last two", got)
	}
	if len(s.lagPoints("h")) != 0 {
		t.Fatal("a group that disappeared kept its history")
	}
	// 10 records committed over one second.
	s.addThroughput(3500, map[string]topicTotals{})
	if p := s.throughputPoints(); p[len(p)-1].RecordsOut != 10 {
		t.Fatalf("records out = %v, want 10", p[len(p)-1].RecordsOut)
	}
}

func TestSamplesLagGroupCap(t *testing.T) {
	s := newSampler(1, 1)
	groups := map[string]groupTotals{}
	for i := range maxSampledGroups + 5 {
		groups[fmt.Sprintf("g%05d", i)] = groupTotals{lag: int64(i)}
	}
	s.addLag(1, groups)
	if len(s.lag) != maxSampledGroups {
		t.Fatalf("%d groups sampled, want the cap %d", len(s.lag), maxSampledGroups)
	}
}
