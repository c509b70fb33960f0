package clock

import (
	"sync"
	"time"
)

// Manual is a Clock whose time moves only when Advance or Set is called, so a
// test decides exactly when every timeout happens. It is safe for concurrent
// use.
//
// Due timers, tickers and AfterFunc callbacks fire in time order (ties in the
// order they were armed), and Now reads each one's due time while it fires,
// as if time had passed continuously. AfterFunc callbacks run synchronously
// inside Advance or Set with no lock held, so they may use the clock; a
// callback that calls Advance itself is fine as well.
//
// Timers created already due: a channel timer sends at once; an AfterFunc
// waits for the next Advance or Set (Advance(0) will do), because a callback
// never runs anywhere but inside those two calls.
type Manual struct {
	mu      sync.Mutex
	now     time.Time
	seq     uint64    // arming counter; orders waiters due at the same instant
	waiters []*waiter // armed waiters, unordered
}

var _ Clock = (*Manual)(nil)

// waiter is one timer, ticker or AfterFunc. when, seq and armed are guarded
// by m.mu; the other fields never change after creation.
type waiter struct {
	m      *Manual
	when   time.Time
	period time.Duration // > 0 for tickers
	seq    uint64
	armed  bool
	c      chan time.Time // buffered(1); nil for AfterFunc
	f      func()
}

// NewManual returns a Manual clock reading start.
func NewManual(start time.Time) *Manual {
	return &Manual{now: start}
}

// Now returns the manual time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Since returns Now().Sub(t).
func (m *Manual) Since(t time.Time) time.Duration {
	return m.Now().Sub(t)
}

// Waiters returns how many timers, tickers and AfterFuncs are armed. A test
// polls it to learn that a goroutine under test has armed its timer, and so
// that an Advance will be seen, instead of sleeping and hoping.
func (m *Manual) Waiters() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.waiters)
}

// Advance moves time forward by d, firing everything that falls due. It
// panics if d is negative: time never runs backwards, as with the monotonic
// clock that Real reads.
func (m *Manual) Advance(d time.Duration) {
	if d < 0 {
		panic("clock: Manual.Advance with a negative duration")
	}
	m.mu.Lock()
	target := m.now.Add(d)
	m.mu.Unlock()
	m.runUntil(target)
}

// Set moves time forward to t, firing everything that falls due. It panics if
// t is before Now.
func (m *Manual) Set(t time.Time) {
	m.mu.Lock()
	backwards := t.Before(m.now)
	m.mu.Unlock()
	if backwards {
		panic("clock: Manual.Set to a time before Now")
	}
	m.runUntil(t)
}

// runUntil fires due waiters one at a time, re-taking the lock for each so
// that callbacks run unlocked and whatever they arm is seen in order.
func (m *Manual) runUntil(target time.Time) {
	for {
		m.mu.Lock()
		w := m.nextDueLocked(target)
		if w == nil {
			if target.After(m.now) {
				m.now = target
			}
			m.mu.Unlock()
			return
		}
		// A concurrent Advance may already have moved past w.when; time
		// still must not go backwards.
		if w.when.After(m.now) {
			m.now = w.when
		}
		f := m.fireLocked(w)
		m.mu.Unlock()
		if f != nil {
			f()
		}
	}
}

// nextDueLocked returns the earliest armed waiter due at or before target.
func (m *Manual) nextDueLocked(target time.Time) *waiter {
	var next *waiter
	for _, w := range m.waiters {
		if w.when.After(target) {
			continue
		}
		if next == nil || w.when.Before(next.when) || (w.when.Equal(next.when) && w.seq < next.seq) {
			next = w
		}
	}
	return next
}

// fireLocked delivers w's event and reschedules or disarms it. It returns the
// callback to run once the lock is released, if w is an AfterFunc.
func (m *Manual) fireLocked(w *waiter) func() {
	if w.period > 0 {
		w.when = w.when.Add(w.period)
		w.seq = m.nextSeqLocked()
	} else {
		m.disarmLocked(w)
	}
	if w.c == nil {
		return w.f
	}
	// Like package time, drop the tick when the receiver has not taken the
	// previous one, rather than block the clock.
	select {
	case w.c <- m.now:
	default:
	}
	return nil
}

func (m *Manual) nextSeqLocked() uint64 {
	m.seq++
	return m.seq
}

func (m *Manual) armLocked(w *waiter, d time.Duration) {
	w.when = m.now.Add(d)
	w.seq = m.nextSeqLocked()
	if !w.armed {
		w.armed = true
		m.waiters = append(m.waiters, w)
	}
}

func (m *Manual) disarmLocked(w *waiter) {
	if !w.armed {
		return
	}
	w.armed = false
	for i, other := range m.waiters {
		if other == w {
			last := len(m.waiters) - 1
			m.waiters[i] = m.waiters[last]
			m.waiters[last] = nil
			m.waiters = m.waiters[:last]
			return
		}
	}
}

// NewTimer returns a timer that sends the manual time on C after d.
func (m *Manual) NewTimer(d time.Duration) Timer {
	w := &waiter{m: m, c: make(chan time.Time, 1)}
	w.reset(d)
	return manualTimer{w}
}

// AfterFunc returns a timer that calls f inside the Advance or Set that
// reaches d from now.
func (m *Manual) AfterFunc(d time.Duration, f func()) Timer {
	w := &waiter{m: m, f: f}
	w.reset(d)
	return manualTimer{w}
}

// NewTicker returns a ticker that sends the manual time on C every d.
func (m *Manual) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	w := &waiter{m: m, period: d, c: make(chan time.Time, 1)}
	w.reset(d)
	return manualTicker{w}
}

// stop disarms w and discards an undelivered value, so that nothing from
// before the call is received afterwards.
func (w *waiter) stop() bool {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	wasArmed := w.armed
	w.m.disarmLocked(w)
	w.drainLocked()
	return wasArmed
}

// reset rearms w to fire d from now. A channel timer already due sends at
// once: nothing could observe the difference, and code that waits on it
// before the next Advance would otherwise hang.
func (w *waiter) reset(d time.Duration) bool {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	wasArmed := w.armed
	w.drainLocked()
	if d <= 0 && w.c != nil && w.period == 0 {
		w.m.disarmLocked(w)
		w.c <- w.m.now // cannot block: just drained, and only we send
		return wasArmed
	}
	w.m.armLocked(w, d)
	return wasArmed
}

func (w *waiter) drainLocked() {
	if w.c == nil {
		return
	}
	select {
	case <-w.c:
	default:
	}
}

type manualTimer struct{ w *waiter }

func (t manualTimer) C() <-chan time.Time        { return t.w.c }
func (t manualTimer) Stop() bool                 { return t.w.stop() }
func (t manualTimer) Reset(d time.Duration) bool { return t.w.reset(d) }

type manualTicker struct{ w *waiter }

func (t manualTicker) C() <-chan time.Time { return t.w.c }
func (t manualTicker) Stop()               { t.w.stop() }
