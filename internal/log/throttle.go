package log

import (
	"math"
	"sync"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
)

// tokenBucket is the pure part of the cleaner's I/O throttle
// (log.cleaner.io.max.bytes.per.second): tokens are bytes, refilled at rate
// per second up to one second's worth, and taking more than there are
// says how long to wait. Time comes in as nowMs.
type tokenBucket struct {
	ratePerSec float64
	tokens     float64
	lastMs     int64
}

func newTokenBucket(ratePerSec float64, nowMs int64) tokenBucket {
	return tokenBucket{ratePerSec: ratePerSec, tokens: ratePerSec, lastMs: nowMs}
}

// take spends n bytes at nowMs and returns how long to wait before the
// I/O may go on (0 when the budget covers it). Going into debt instead of
// refusing keeps a batch larger than one second's budget from stalling.
func (b *tokenBucket) take(n int64, nowMs int64) time.Duration {
	if b.ratePerSec <= 0 || math.IsInf(b.ratePerSec, 1) {
		return 0
	}
	if nowMs > b.lastMs {
		b.tokens = min(b.ratePerSec, b.tokens+float64(nowMs-b.lastMs)*b.ratePerSec/1000)
		b.lastMs = nowMs
	}
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.ratePerSec * float64(time.Second))
}

// Throttler bounds the bytes per second the cleaner threads of a log
// directory read and write, together (Kafka shares one throttler too).
type Throttler struct {
	clock clock.Clock
	mu    sync.Mutex
	b     tokenBucket
}

// NewThrottler limits to bytesPerSec; math.MaxFloat64 or less than 1 means no limit.
func NewThrottler(c clock.Clock, bytesPerSec float64) *Throttler {
	if c == nil {
		c = clock.Real()
	}
	if bytesPerSec < 1 || bytesPerSec >= math.MaxFloat64 {
		bytesPerSec = 0
	}
	return &Throttler{clock: c, b: newTokenBucket(bytesPerSec, clock.UnixMs(c))}
}

// maybeThrottle accounts for n bytes of I/O and sleeps (on the clock) when
// over budget; stop cancels the sleep.
func (t *Throttler) maybeThrottle(n int64, stop <-chan struct{}) {
	if t == nil {
		return
	}
	t.mu.Lock()
	wait := t.b.take(n, clock.UnixMs(t.clock))
	t.mu.Unlock()
	if wait <= 0 {
		return
	}
	timer := t.clock.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C():
	case <-stop:
	}
}
