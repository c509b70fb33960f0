package sharestate

import (
	"math/rand/v2"
	"testing"
)

// slowMerge is merge by definition: offset by offset, later batches win.
func slowMerge(base, batches []Batch, startOffset int64) map[int64][2]int64 {
	out := map[int64][2]int64{}
	for _, list := range [][]Batch{base, batches} {
		for _, b := range list {
			for o := b.FirstOffset; o <= b.LastOffset; o++ {
				out[o] = [2]int64{int64(b.DeliveryState), int64(b.DeliveryCount)}
			}
		}
	}
	for o := range out {
		if o < startOffset {
			delete(out, o)
		}
	}
	return out
}

func randomBatches(r *rand.Rand, sorted bool) []Batch {
	var out []Batch
	next := int64(r.IntN(5))
	for range r.IntN(6) {
		first := next + int64(r.IntN(4))
		if !sorted {
			first = int64(r.IntN(40))
		}
		last := first + int64(r.IntN(6))
		out = append(out, Batch{FirstOffset: first, LastOffset: last, DeliveryState: int8(2 * r.IntN(3)), DeliveryCount: int16(r.IntN(2))})
		next = last + 1
	}
	return out
}

// TestShareStateMergeMatchesDefinition: merge (the sweep for sorted
// batches, the cuts otherwise) gives the offsets, states and counts of the
// offset-by-offset definition, sorted, disjoint and joined.
func TestShareStateMergeMatchesDefinition(t *testing.T) {
	seed := uint64(rand.Int64())
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range 20000 {
		base := merge(nil, randomBatches(r, r.IntN(2) == 0), -1)
		top := randomBatches(r, r.IntN(2) == 0)
		start := int64(r.IntN(20)) - 1
		got := merge(base, top, start)
		want := slowMerge(base, top, start)
		flat := map[int64][2]int64{}
		for j, b := range got {
			if j > 0 && (b.FirstOffset <= got[j-1].LastOffset ||
				b.FirstOffset == got[j-1].LastOffset+1 && b.DeliveryState == got[j-1].DeliveryState && b.DeliveryCount == got[j-1].DeliveryCount) {
				t.Fatalf("seed %d case %d: not sorted, disjoint and joined: %v", seed, i, got)
			}
			for o := b.FirstOffset; o <= b.LastOffset; o++ {
				flat[o] = [2]int64{int64(b.DeliveryState), int64(b.DeliveryCount)}
			}
		}
		if len(flat) != len(want) {
			t.Fatalf("seed %d case %d: merge(%v, %v, %d) = %v", seed, i, base, top, start, got)
		}
		for o, v := range want {
			if flat[o] != v {
				t.Fatalf("seed %d case %d: offset %d is %v, want %v: merge(%v, %v, %d) = %v", seed, i, o, flat[o], v, base, top, start, got)
			}
		}
	}
}
