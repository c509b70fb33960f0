package log

import (
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestGroupSyncFailureIsSticky: a directory fsync that fails may have
// dropped the write-back of any entry made before it ended, and a later
// fsync on a fresh descriptor does not see that error. So the caller that
// asked while the failed sync ran, and every later caller, get the
// failure instead of a new sync's success.
func TestGroupSyncFailureIsSticky(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g groupSync
		var calls atomic.Int32
		release := make(chan struct{})
		eio := errors.New("input/output error")
		fn := func() error {
			if calls.Add(1) == 1 {
				<-release
				return eio
			}
			return nil
		}
		first := make(chan error, 1)
		go func() { first <- g.sync(fn) }()
		synctest.Wait() // the first sync runs, blocked in fn
		waiter := make(chan error, 1)
		go func() { waiter <- g.sync(fn) }()
		synctest.Wait() // the waiter asked while it ran
		close(release)
		if err := <-first; !errors.Is(err, eio) {
			t.Fatalf("first sync: %v, want %v", err, eio)
		}
		if err := <-waiter; !errors.Is(err, eio) {
			t.Fatalf("sync asked during the failed one: %v, want %v", err, eio)
		}
		if err := g.sync(fn); !errors.Is(err, eio) {
			t.Fatalf("later sync: %v, want %v", err, eio)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("%d fsyncs, want 1: none runs after a failure", n)
		}
	})
}
