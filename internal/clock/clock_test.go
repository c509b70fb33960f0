package clock

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// received reports whether a value is ready on c, and which.
func received(c <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-c:
		return v, true
	default:
		return time.Time{}, false
	}
}

// waitForWaiters spins until m has n armed waiters: the pattern Waiters is
// for, used instead of sleeping.
func waitForWaiters(t *testing.T, m *Manual, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.Waiters() != n {
		if time.Now().After(deadline) {
			t.Fatalf("waiters = %d, want %d", m.Waiters(), n)
		}
		runtime.Gosched()
	}
}

func TestClockManualNowAdvanceSet(t *testing.T) {
	m := NewManual(epoch)
	if !m.Now().Equal(epoch) {
		t.Fatalf("Now = %v, want %v", m.Now(), epoch)
	}
	m.Advance(1500 * time.Millisecond)
	if got := m.Since(epoch); got != 1500*time.Millisecond {
		t.Fatalf("Since = %v, want 1.5s", got)
	}
	m.Set(epoch.Add(time.Hour))
	if got := UnixMs(m); got != epoch.Add(time.Hour).UnixMilli() {
		t.Fatalf("UnixMs = %d", got)
	}
}

func TestClockManualPanicsOnBackwardsTime(t *testing.T) {
	cases := map[string]func(m *Manual){
		"negative advance": func(m *Manual) { m.Advance(-time.Nanosecond) },
		"set backwards":    func(m *Manual) { m.Set(epoch.Add(-time.Second)) },
		"zero ticker":      func(m *Manual) { m.NewTicker(0) },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f(NewManual(epoch))
		})
	}
}

func TestClockManualTimerFiresAtDeadline(t *testing.T) {
	m := NewManual(epoch)
	timer := m.NewTimer(10 * time.Second)
	m.Advance(9 * time.Second)
	if _, ok := received(timer.C()); ok {
		t.Fatal("timer fired early")
	}
	m.Advance(5 * time.Second)
	v, ok := received(timer.C())
	if !ok || !v.Equal(epoch.Add(10*time.Second)) {
		t.Fatalf("fired=%v at %v, want the deadline %v", ok, v, epoch.Add(10*time.Second))
	}
	if m.Waiters() != 0 {
		t.Fatalf("a fired timer is still armed: waiters = %d", m.Waiters())
	}
	if !m.Now().Equal(epoch.Add(14 * time.Second)) {
		t.Fatalf("Now = %v after advancing 14s", m.Now())
	}
}

func TestClockManualFiresInTimeOrder(t *testing.T) {
	m := NewManual(epoch)
	var order []int
	var seenNow []time.Duration
	for _, d := range []int{3, 1, 2, 1} {
		m.AfterFunc(time.Duration(d)*time.Second, func() {
			order = append(order, d)
			seenNow = append(seenNow, m.Since(epoch))
		})
	}
	m.Advance(time.Minute)
	want := []int{1, 1, 2, 3}
	for i := range want {
		if order[i] != want[i] || seenNow[i] != time.Duration(want[i])*time.Second {
			t.Fatalf("fired %v seeing %v, want %v each at its own due time", order, seenNow, want)
		}
	}
}

func TestClockManualSameInstantFiresInArmingOrder(t *testing.T) {
	m := NewManual(epoch)
	var order []string
	for _, name := range []string{"a", "b", "c"} {
		m.AfterFunc(time.Second, func() { order = append(order, name) })
	}
	m.Advance(time.Second)
	if len(order) != 3 || order[0] != "a" || order[1] != "b" || order[2] != "c" {
		t.Fatalf("order = %v, want [a b c]", order)
	}
}

func TestClockManualAfterFuncMayUseClock(t *testing.T) {
	m := NewManual(epoch)
	var fired []time.Duration
	m.AfterFunc(time.Second, func() {
		fired = append(fired, m.Since(epoch))
		// Re-arming from a callback must not deadlock, and a timer that
		// falls due within the same Advance must fire in it.
		m.AfterFunc(time.Second, func() { fired = append(fired, m.Since(epoch)) })
	})
	m.Advance(5 * time.Second)
	if len(fired) != 2 || fired[0] != time.Second || fired[1] != 2*time.Second {
		t.Fatalf("fired at %v, want [1s 2s]", fired)
	}
}

func TestClockManualStopAndReset(t *testing.T) {
	m := NewManual(epoch)
	timer := m.NewTimer(time.Second)
	if !timer.Stop() {
		t.Fatal("Stop of an armed timer returned false")
	}
	if timer.Stop() {
		t.Fatal("second Stop returned true")
	}
	m.Advance(2 * time.Second)
	if _, ok := received(timer.C()); ok {
		t.Fatal("stopped timer fired")
	}
	if timer.Reset(time.Second) {
		t.Fatal("Reset of a stopped timer returned true")
	}
	if !timer.Reset(3 * time.Second) {
		t.Fatal("Reset of an armed timer returned false")
	}
	m.Advance(2 * time.Second)
	if _, ok := received(timer.C()); ok {
		t.Fatal("Reset did not push the deadline out")
	}
	m.Advance(time.Second)
	if _, ok := received(timer.C()); !ok {
		t.Fatal("reset timer did not fire")
	}
}

func TestClockManualStopDiscardsUnreceivedValue(t *testing.T) {
	m := NewManual(epoch)
	timer := m.NewTimer(time.Second)
	m.Advance(time.Second)
	if timer.Stop() {
		t.Fatal("Stop of a fired timer returned true")
	}
	if _, ok := received(timer.C()); ok {
		t.Fatal("a value from before Stop was received after it")
	}
}

func TestClockManualAlreadyDue(t *testing.T) {
	m := NewManual(epoch)
	timer := m.NewTimer(0)
	if v, ok := received(timer.C()); !ok || !v.Equal(epoch) {
		t.Fatalf("NewTimer(0) fired=%v at %v, want at once", ok, v)
	}
	ran := false
	m.AfterFunc(-time.Second, func() { ran = true })
	if ran {
		t.Fatal("AfterFunc ran outside Advance")
	}
	m.Advance(0)
	if !ran {
		t.Fatal("due AfterFunc did not run on Advance(0)")
	}
}

func TestClockManualTickerDropsTicksForSlowReceiver(t *testing.T) {
	m := NewManual(epoch)
	ticker := m.NewTicker(time.Second)
	m.Advance(time.Second)
	if v, ok := received(ticker.C()); !ok || !v.Equal(epoch.Add(time.Second)) {
		t.Fatalf("first tick fired=%v at %v", ok, v)
	}
	m.Advance(5 * time.Second)
	v, ok := received(ticker.C())
	if !ok || !v.Equal(epoch.Add(2*time.Second)) {
		t.Fatalf("got tick %v (ok=%v), want only the first undelivered one at 2s", v, ok)
	}
	if _, ok := received(ticker.C()); ok {
		t.Fatal("ticks queued up for a slow receiver")
	}
	ticker.Stop()
	m.Advance(time.Minute)
	if _, ok := received(ticker.C()); ok || m.Waiters() != 0 {
		t.Fatalf("stopped ticker still ticks (waiters=%d)", m.Waiters())
	}
}

func TestClockManualWaitersLetsTestsSync(t *testing.T) {
	m := NewManual(epoch)
	done := make(chan time.Duration)
	go func() {
		start := m.Now()
		timer := m.NewTimer(time.Minute)
		<-timer.C()
		done <- m.Since(start)
	}()
	waitForWaiters(t, m, 1)
	m.Advance(time.Minute)
	if got := <-done; got != time.Minute {
		t.Fatalf("goroutine waited %v of manual time, want 1m", got)
	}
}

// TestClockManualConcurrentUse is for the race detector: timers armed,
// reset and stopped from many goroutines while time advances.
func TestClockManualConcurrentUse(t *testing.T) {
	m := NewManual(epoch)
	var wg sync.WaitGroup
	var mu sync.Mutex
	calls := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				timer := m.AfterFunc(time.Duration(j%7)*time.Millisecond, func() {
					mu.Lock()
					calls++
					mu.Unlock()
				})
				if j%3 == 0 {
					timer.Reset(time.Millisecond)
				}
				if j%5 == 0 {
					timer.Stop()
				}
				m.Advance(time.Duration(i) * time.Millisecond)
			}
		}(i)
	}
	wg.Wait()
	m.Advance(time.Second)
	if m.Waiters() != 0 {
		t.Fatalf("waiters = %d after every timer fell due", m.Waiters())
	}
	// Only the timers stopped (every fifth) may have been skipped.
	if calls < 8*80 || calls > 8*100 {
		t.Fatalf("%d callbacks ran, want between 640 and 800", calls)
	}
}

func TestClockRealTimers(t *testing.T) {
	c := Real()
	start := c.Now()
	timer := c.NewTimer(time.Millisecond)
	<-timer.C()
	if c.Since(start) < time.Millisecond {
		t.Fatalf("timer fired after %v, before 1ms", c.Since(start))
	}
	fired := make(chan struct{})
	after := c.AfterFunc(time.Millisecond, func() { close(fired) })
	if after.C() != nil {
		t.Fatal("AfterFunc timer has a channel")
	}
	<-fired
	ticker := c.NewTicker(time.Millisecond)
	<-ticker.C()
	ticker.Stop()
	if UnixMs(c) < start.UnixMilli() {
		t.Fatal("UnixMs went backwards")
	}
}
