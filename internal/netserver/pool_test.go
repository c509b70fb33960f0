package netserver

import (
	"math"
	"sync"
	"testing"
)

func TestNetserverFrameClass(t *testing.T) {
	sizes := []int{1, 511, 512, 513, 1000, 1024, 1025, 1280, 1281, 4096, 100000, 1 << 20, 1<<20 + 1, 100 << 20, math.MaxInt32}
	prev := -1
	for _, n := range sizes {
		index, capacity := frameClass(n)
		if capacity < n {
			t.Errorf("frameClass(%d) capacity %d below the size", n, capacity)
		}
		if n > smallestFrameClass && float64(capacity) > 1.25*float64(n) {
			t.Errorf("frameClass(%d) capacity %d wastes more than a quarter", n, capacity)
		}
		if index < 0 || index >= numFrameClasses {
			t.Errorf("frameClass(%d) index %d out of range", n, index)
		}
		if index < prev {
			t.Errorf("frameClass(%d) index %d below the previous size's %d", n, index, prev)
		}
		prev = index
		// A buffer of a class's capacity maps back to the same class.
		if i2, c2 := frameClass(capacity); i2 != index || c2 != capacity {
			t.Errorf("frameClass(%d) = (%d, %d), its capacity maps to (%d, %d)", n, index, capacity, i2, c2)
		}
	}
}

func TestNetserverFrameBufferReuse(t *testing.T) {
	bp := getFrameBuffer(3000)
	if len(*bp) != 3000 {
		t.Fatalf("len %d, want 3000", len(*bp))
	}
	putFrameBuffer(bp)
	// sync.Pool may drop buffers at any time; check only that a steady
	// get/put cycle does not allocate on average.
	allocs := testing.AllocsPerRun(100, func() {
		putFrameBuffer(getFrameBuffer(3000))
	})
	if allocs > 0.5 {
		t.Errorf("%.2f allocations per get/put cycle", allocs)
	}
}

func TestNetserverMemoryPoolBound(t *testing.T) {
	const limit = 1000
	p := newMemoryPool(limit)
	var wg sync.WaitGroup
	var mu sync.Mutex
	maxSeen := int64(0)
	never := make(chan struct{})
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				n := int64(1 + (g*37+i*11)%limit)
				if !p.acquire(n, never) {
					t.Error("acquire failed without cancel")
					return
				}
				mu.Lock()
				maxSeen = max(maxSeen, p.inUse())
				mu.Unlock()
				p.release(n)
			}
		})
	}
	wg.Wait()
	if maxSeen > limit {
		t.Errorf("pool use reached %d, limit %d", maxSeen, limit)
	}
	if u := p.inUse(); u != 0 {
		t.Errorf("inUse %d after all released", u)
	}
}

func TestNetserverMemoryPoolFIFOAndCancel(t *testing.T) {
	p := newMemoryPool(100)
	never := make(chan struct{})
	if !p.acquire(90, never) {
		t.Fatal("first acquire failed")
	}
	// A large waiter queues; a small request behind it must not overtake
	// it, or large frames could starve.
	bigDone := make(chan bool, 1)
	cancelBig := make(chan struct{})
	go func() { bigDone <- p.acquire(50, cancelBig) }()
	eventually(t, "big waiter queued", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.waiters) == 1
	})
	smallDone := make(chan bool, 1)
	go func() { smallDone <- p.acquire(5, never) }()
	eventually(t, "small waiter queued", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.waiters) == 2
	})
	// Cancelling the head lets the small one through.
	close(cancelBig)
	if <-bigDone {
		t.Fatal("cancelled acquire reported success")
	}
	if !<-smallDone {
		t.Fatal("small acquire failed")
	}
	if u := p.inUse(); u != 95 {
		t.Fatalf("inUse %d, want 95", u)
	}
	p.release(95)
	if u := p.inUse(); u != 0 {
		t.Fatalf("inUse %d, want 0", u)
	}
}
