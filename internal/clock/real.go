package clock

import "time"

// Real returns the Clock backed by package time.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time                  { return time.Now() }
func (realClock) Since(t time.Time) time.Duration { return time.Since(t) }

func (realClock) NewTimer(d time.Duration) Timer {
	t := time.NewTimer(d)
	return realTimer{timer: t, c: t.C}
}

func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{timer: time.AfterFunc(d, f)}
}

func (realClock) NewTicker(d time.Duration) Ticker {
	return realTicker{time.NewTicker(d)}
}

// realTimer keeps c separately because an AfterFunc timer's C field is nil,
// which is what the Timer interface promises for it too.
type realTimer struct {
	timer *time.Timer
	c     <-chan time.Time
}

func (t realTimer) C() <-chan time.Time        { return t.c }
func (t realTimer) Stop() bool                 { return t.timer.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.timer.Reset(d) }

type realTicker struct{ ticker *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.ticker.C }
func (t realTicker) Stop()               { t.ticker.Stop() }
