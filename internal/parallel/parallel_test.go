package parallel

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Every item is visited once, and never more than n calls run at once.
func TestForEachBoundsConcurrency(t *testing.T) {
	for _, n := range []int{0, 1, 3, 64} {
		items := make([]int, 100)
		for i := range items {
			items[i] = i
		}
		var running, peak atomic.Int32
		var mu sync.Mutex
		seen := map[int]int{}
		ForEach(items, n, func(i int) {
			now := running.Add(1)
			for {
				p := peak.Load()
				if now <= p || peak.CompareAndSwap(p, now) {
					break
				}
			}
			mu.Lock()
			seen[i]++
			mu.Unlock()
			running.Add(-1)
		})
		if len(seen) != len(items) {
			t.Fatalf("n=%d: visited %d of %d items", n, len(seen), len(items))
		}
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("n=%d: item %d visited %d times", n, i, c)
			}
		}
		if limit := int32(max(n, 1)); peak.Load() > limit {
			t.Fatalf("n=%d: %d calls ran at once", n, peak.Load())
		}
	}
}
