// Package clock is the one way Sluice code reads time and waits on it, so that
// tests and the cluster simulator can replace wall-clock time with a Manual
// clock that moves only when told to.
//
// Drivers (the goroutines around the pure state machines) take a Clock; the
// pure packages take no Clock at all and receive the time as nowMs, usually
// from UnixMs.
//
// Timers follow the semantics of package time since Go 1.23: after Stop or
// Reset returns, no value from before the call is received on C.
package clock

import "time"

// Clock tells the time and makes timers.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Since returns the time elapsed since t.
	Since(t time.Time) time.Duration
	// NewTimer returns a Timer that sends the time on its channel once, after d.
	NewTimer(d time.Duration) Timer
	// AfterFunc returns a Timer that calls f once, after d. Its C is nil.
	AfterFunc(d time.Duration, f func()) Timer
	// NewTicker returns a Ticker that sends the time every d; d must be > 0.
	NewTicker(d time.Duration) Ticker
}

// Timer is a single event in the future, like *time.Timer.
type Timer interface {
	// C returns the channel the time is sent on; nil for AfterFunc timers.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether the timer was
	// armed, i.e. whether this call stopped it.
	Stop() bool
	// Reset rearms the timer to fire after d. It reports whether the timer
	// was armed before the call.
	Reset(d time.Duration) bool
}

// Ticker delivers the time at intervals, like *time.Ticker. A slow receiver
// misses ticks rather than queueing them.
type Ticker interface {
	// C returns the channel ticks are sent on.
	C() <-chan time.Time
	// Stop turns the ticker off; no tick is sent after Stop returns.
	Stop()
}

// UnixMs returns c's current time in milliseconds since the Unix epoch: the
// nowMs the pure state machines take, and the unit of Kafka timestamps.
func UnixMs(c Clock) int64 {
	return c.Now().UnixMilli()
}
