package netserver

import (
	"math/bits"
	"sync"
)

// memoryPool bounds the request bytes that have been read (or are about to
// be) but not yet served, across all connections: Kafka's
// queued.max.request.bytes. A reader acquires a frame's size before it
// allocates the frame's buffer and the processor releases it once Serve has
// returned, so a flood of large requests is held back in the clients' socket
// buffers instead of in our heap.
//
// Waiters are granted in arrival order. Without that, a stream of small
// frames could keep a large frame waiting for ever; since every frame is at
// most MaxRequestBytes <= limit, the head waiter is always eventually served.
type memoryPool struct {
	mu      sync.Mutex
	limit   int64
	used    int64
	waiters []*poolWaiter // FIFO; bounded by the number of connections
}

type poolWaiter struct {
	n     int64
	ready chan struct{} // closed once n bytes are granted to this waiter
}

func newMemoryPool(limit int64) *memoryPool {
	return &memoryPool{limit: limit}
}

// acquire takes n bytes, waiting while the pool is exhausted. It returns
// false, holding nothing, if cancel is closed first.
func (p *memoryPool) acquire(n int64, cancel <-chan struct{}) bool {
	p.mu.Lock()
	if len(p.waiters) == 0 && p.used+n <= p.limit {
		p.used += n
		p.mu.Unlock()
		return true
	}
	w := &poolWaiter{n: n, ready: make(chan struct{})}
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()

	select {
	case <-w.ready:
		return true
	case <-cancel:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-w.ready:
		// Granted between cancel and the lock: hand the bytes back.
		p.used -= n
	default:
		for i, other := range p.waiters {
			if other == w {
				p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
				break
			}
		}
	}
	// Either way the head of the queue may now fit.
	p.grantLocked()
	return false
}

// release returns n bytes taken by acquire.
func (p *memoryPool) release(n int64) {
	p.mu.Lock()
	p.used -= n
	p.grantLocked()
	p.mu.Unlock()
}

func (p *memoryPool) grantLocked() {
	for len(p.waiters) > 0 && p.used+p.waiters[0].n <= p.limit {
		w := p.waiters[0]
		p.waiters[0] = nil
		p.waiters = p.waiters[1:]
		p.used += w.n
		close(w.ready)
	}
}

// inUse reports the bytes currently acquired.
func (p *memoryPool) inUse() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used
}

// Frame buffers are recycled through size classes so that steady load does
// not allocate a buffer per request. Classes are 512 bytes, then four steps
// per power of two (1.25, 1.5, 1.75 and 2 times the lower power), so a buffer
// is never more than a quarter larger than the frame it holds: with large
// frames near the memory pool's limit, rounding up to the next power of two
// could double the real memory held for the bytes the pool accounts.
const (
	smallestFrameClass = 512
	smallestClassShift = 10 // frames above 512 bytes start at classes below 1<<10
	stepsPerDoubling   = 4
	// 1 + four classes for each exponent from 10 to 32 covers any int32 size.
	numFrameClasses = 1 + (32-smallestClassShift+1)*stepsPerDoubling
)

var frameBuffers [numFrameClasses]sync.Pool // each holds *[]byte of one class's capacity

// frameClass returns the class index and capacity for a frame of n > 0 bytes.
func frameClass(n int) (index, capacity int) {
	if n <= smallestFrameClass {
		return 0, smallestFrameClass
	}
	exp := bits.Len(uint(n - 1)) // 2^(exp-1) < n <= 2^exp, exp >= 10
	half := 1 << (exp - 1)
	step := half / stepsPerDoubling
	q := (n - half + step - 1) / step // 1..4
	return 1 + (exp-smallestClassShift)*stepsPerDoubling + q - 1, half + q*step
}

// getFrameBuffer returns a buffer of length n from its size class. The
// pointer is what goes back to putFrameBuffer, so recycling allocates nothing.
func getFrameBuffer(n int) *[]byte {
	index, capacity := frameClass(n)
	if v := frameBuffers[index].Get(); v != nil {
		bp := v.(*[]byte)
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n, capacity)
	return &b
}

func putFrameBuffer(bp *[]byte) {
	index, capacity := frameClass(cap(*bp))
	if capacity != cap(*bp) {
		return // not one of ours
	}
	frameBuffers[index].Put(bp)
}
