package cluster

import (
	"fmt"
	"sort"
	"strings"
)

// Ack is one record a producer saw acknowledged: what it sent (producer,
// seq: the producer's send order) and where the broker said it is.
type Ack struct {
	Producer  int
	Seq       int64
	Partition int32
	Offset    int64
}

// Stored is one record read back from a partition.
type Stored struct {
	Offset int64
	Value  string
}

// Value is how a producer encodes (producer, seq) into a record value;
// the checker reads producer and seq back from stored values.
func Value(producer int, seq int64) string {
	return fmt.Sprintf("p%d-s%d", producer, seq)
}

func parseValue(v string) (producer int, seq int64, ok bool) {
	n, err := fmt.Sscanf(v, "p%d-s%d", &producer, &seq)
	return producer, seq, err == nil && n == 2 && Value(producer, seq) == v
}

// maxViolations bounds a report: the first few say what went wrong.
const maxViolations = 20

// Violation is one way the log disagrees with what was acknowledged.
type Violation struct {
	Kind   string // lost, moved, duplicate, reordered, foreign, offsets
	Detail string
}

func (v Violation) String() string { return v.Kind + ": " + v.Detail }

// CheckHistory compares acknowledged records with partitions read from
// their log start to the high watermark and returns the violations found,
// the first maxViolations of them plus a count line, in a stable order:
//
//   - every acknowledged value is in the log exactly once, at the
//     acknowledged partition and offset (lost, moved, duplicate);
//   - no value is stored twice, acknowledged or not: an idempotent
//     producer's retries must not duplicate (duplicate);
//   - within a partition, one producer's values are in send order
//     (reordered);
//   - offsets read are strictly increasing (offsets), and every value is one
//     a producer could have sent (foreign).
func CheckHistory(acks []Ack, log map[int32][]Stored) []Violation {
	var out []Violation
	add := func(kind, format string, args ...any) {
		out = append(out, Violation{kind, fmt.Sprintf(format, args...)})
	}
	where := indexLog(log, add)
	for _, a := range sortedAcks(acks) {
		v := Value(a.Producer, a.Seq)
		places := where[v]
		switch {
		case len(places) == 0:
			add("lost", "%s acknowledged at %d/%d is not in the log (log there: %s)", v, a.Partition, a.Offset, at(log, a.Partition, a.Offset))
		case len(places) > 1:
			// reported by indexLog
		case places[0] != (place{a.Partition, a.Offset}):
			add("moved", "%s acknowledged at %d/%d is stored at %s", v, a.Partition, a.Offset, places[0])
		}
	}
	return truncateViolations(out)
}

type place struct {
	partition int32
	offset    int64
}

func (p place) String() string { return fmt.Sprintf("%d/%d", p.partition, p.offset) }

// indexLog maps each value to where it is stored, reporting duplicates,
// foreign values, offsets out of order and per-producer reordering.
func indexLog(log map[int32][]Stored, add func(kind, format string, args ...any)) map[string][]place {
	where := map[string][]place{}
	for _, p := range sortedPartitions(log) {
		type sent struct{ seq, offset int64 }
		last := map[int]sent{} // by producer
		prevOffset := int64(-1)
		for _, r := range log[p] {
			here := place{p, r.Offset}
			if r.Offset <= prevOffset {
				add("offsets", "partition %d: offset %d read after %d", p, r.Offset, prevOffset)
			}
			prevOffset = r.Offset
			if len(where[r.Value]) > 0 {
				add("duplicate", "%s stored at %s and at %s", r.Value, where[r.Value][0], here)
			}
			where[r.Value] = append(where[r.Value], here)
			producer, seq, ok := parseValue(r.Value)
			if !ok {
				add("foreign", "%s holds %q, which no producer sends", here, r.Value)
				continue
			}
			if prev, seen := last[producer]; seen && seq <= prev.seq {
				add("reordered", "partition %d: producer %d's seq %d at offset %d follows its seq %d at offset %d", p, producer, seq, r.Offset, prev.seq, prev.offset)
			}
			last[producer] = sent{seq, r.Offset}
		}
	}
	return where
}

func at(log map[int32][]Stored, partition int32, offset int64) string {
	for _, r := range log[partition] {
		if r.Offset == offset {
			return r.Value
		}
	}
	if n := len(log[partition]); n == 0 || log[partition][n-1].Offset < offset {
		return fmt.Sprintf("<beyond the %d records read>", n)
	}
	return "<no record at that offset>"
}

func sortedPartitions(log map[int32][]Stored) []int32 {
	ps := make([]int32, 0, len(log))
	for p := range log {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

func sortedAcks(acks []Ack) []Ack {
	out := append([]Ack(nil), acks...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out
}

func truncateViolations(vs []Violation) []Violation {
	if len(vs) <= maxViolations {
		return vs
	}
	kinds := map[string]int{}
	for _, v := range vs {
		kinds[v.Kind]++
	}
	var counts []string
	for k, n := range kinds {
		counts = append(counts, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(counts)
	out := append([]Violation(nil), vs[:maxViolations]...)
	return append(out, Violation{"more", fmt.Sprintf("%d violations in all (%s)", len(vs), strings.Join(counts, " "))})
}

// FormatViolations renders a report, one violation a line.
func FormatViolations(vs []Violation) string {
	var b strings.Builder
	for _, v := range vs {
		b.WriteString("  " + v.String() + "\n")
	}
	return b.String()
}
