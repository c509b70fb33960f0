package console

import (
	"maps"
	"slices"
	"sync"
)

// ring keeps the last len(buf) values pushed, oldest first in items.
type ring[T any] struct {
	buf  []T
	next int
	full bool
}

func newRing[T any](n int) *ring[T] {
	return &ring[T]{buf: make([]T, n)}
}

func (r *ring[T]) push(v T) {
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

func (r *ring[T]) items() []T {
	if !r.full {
		return slices.Clone(r.buf[:r.next])
	}
	return append(slices.Clone(r.buf[r.next:]), r.buf[:r.next]...)
}

// ThroughputPoint is one sample of the cluster's rates, per second over the
// interval that ended at TimeMs. A rate is -1 where it is unknown (the
// first sample, or a failed read).
type ThroughputPoint struct {
	TimeMs int64 `json:"time_ms"`
	// RecordsIn is the growth of the sum of every partition's high
	// watermark: records appended and committed.
	RecordsIn float64 `json:"records_in"`
	// BytesIn is the growth of the sum of every partition's log size (its
	// largest replica), clamped at zero when retention deletes segments.
	BytesIn float64 `json:"bytes_in"`
	// RecordsOut is the growth of the offsets consumer groups committed:
	// records consumed, as far as groups report it. It moves at the lag
	// sampler's pace.
	RecordsOut float64 `json:"records_out"`
}

// LagPoint is a group's total lag (records behind the high watermarks,
// summed over its committed partitions) at TimeMs.
type LagPoint struct {
	TimeMs int64 `json:"time_ms"`
	Lag    int64 `json:"lag"`
}

// TopicRate is a topic's rates over the last throughput interval.
type TopicRate struct {
	RecordsIn float64
	BytesIn   float64
}

// topicTotals are the cumulative figures rates are computed from.
type topicTotals struct {
	records int64 // sum of high watermarks
	bytes   int64 // sum of partition sizes
}

// groupTotals are what the lag sampler reads for one group.
type groupTotals struct {
	lag       int64
	committed int64 // sum of committed offsets
}

// maxSampledGroups bounds the groups whose lag history is kept; groups
// past it (in name order) have no chart.
const maxSampledGroups = 1000

// sampler holds the bounded history behind the charts. Its methods take
// the time as nowMs and the figures read from the cluster, and do no I/O,
// so tests drive it directly.
type sampler struct {
	mu sync.Mutex

	throughput *ring[ThroughputPoint]
	lastMs     int64 // time of lastTopics; 0 before the first sample
	lastTopics map[string]topicTotals
	topicRates map[string]TopicRate
	// recordsOut is the latest consumption rate, carried into every
	// throughput point until the lag sampler updates it.
	recordsOut float64

	lagHistory  int
	lag         map[string]*ring[LagPoint]
	lastGroupMs int64
	lastGroups  map[string]groupTotals
}

func newSampler(throughputHistory, lagHistory int) *sampler {
	return &sampler{
		throughput: newRing[ThroughputPoint](throughputHistory),
		lagHistory: lagHistory,
		lag:        map[string]*ring[LagPoint]{},
		recordsOut: -1,
	}
}

// perSecond is the growth from prev to cur over dtMs, clamped at zero:
// a log that shrank (retention, a deleted and recreated topic) did not
// take in negative bytes.
func perSecond(prev, cur int64, dtMs int64) float64 {
	if dtMs <= 0 || cur <= prev {
		return 0
	}
	return float64(cur-prev) * 1000 / float64(dtMs)
}

// addThroughput records the cumulative per-topic figures read at nowMs.
// Topics present in both samples contribute to the rates; a new topic's
// first sample is only a baseline.
func (s *sampler) addThroughput(nowMs int64, topics map[string]topicTotals) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := ThroughputPoint{TimeMs: nowMs, RecordsIn: -1, BytesIn: -1, RecordsOut: s.recordsOut}
	rates := make(map[string]TopicRate, len(topics))
	if s.lastTopics != nil {
		dt := nowMs - s.lastMs
		p.RecordsIn, p.BytesIn = 0, 0
		for name, cur := range topics {
			prev, ok := s.lastTopics[name]
			if !ok {
				continue
			}
			r := TopicRate{RecordsIn: perSecond(prev.records, cur.records, dt), BytesIn: perSecond(prev.bytes, cur.bytes, dt)}
			rates[name] = r
			p.RecordsIn += r.RecordsIn
			p.BytesIn += r.BytesIn
		}
	}
	s.lastMs, s.lastTopics, s.topicRates = nowMs, topics, rates
	s.throughput.push(p)
}

// addLag records every sampled group's totals at nowMs; groups that are
// gone lose their history.
func (s *sampler) addLag(nowMs int64, groups map[string]groupTotals) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.lag {
		if _, ok := groups[name]; !ok {
			delete(s.lag, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		r, ok := s.lag[name]
		if !ok {
			if len(s.lag) >= maxSampledGroups {
				continue
			}
			r = newRing[LagPoint](s.lagHistory)
			s.lag[name] = r
		}
		r.push(LagPoint{TimeMs: nowMs, Lag: groups[name].lag})
	}
	if s.lastGroups != nil {
		var consumed int64
		for name, cur := range groups {
			if prev, ok := s.lastGroups[name]; ok && cur.committed > prev.committed {
				consumed += cur.committed - prev.committed
			}
		}
		s.recordsOut = perSecond(0, consumed, nowMs-s.lastGroupMs)
	}
	s.lastGroupMs, s.lastGroups = nowMs, groups
}

func (s *sampler) throughputPoints() []ThroughputPoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throughput.items()
}

// topicStats returns a topic's rate and size (bytes of its largest
// replicas) as of the last throughput sample.
func (s *sampler) topicStats(topic string) (rate TopicRate, sizeBytes int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	totals, ok := s.lastTopics[topic]
	if !ok {
		return TopicRate{RecordsIn: -1, BytesIn: -1}, -1, false
	}
	rate, rated := s.topicRates[topic]
	if !rated {
		rate = TopicRate{RecordsIn: -1, BytesIn: -1}
	}
	return rate, totals.bytes, true
}

func (s *sampler) lagPoints(group string) []LagPoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.lag[group]; ok {
		return r.items()
	}
	return []LagPoint{}
}
