package purgatory

import (
	"sync"
	"testing"
)

func TestWatchersNotifyAndCancel(t *testing.T) {
	var w Watchers
	w.Notify() // an empty set is fine
	a, b := make(chan struct{}, 1), make(chan struct{}, 1)
	cancelA := w.Add(a)
	cancelB := w.Add(b)
	if w.Len() != 2 {
		t.Fatalf("len %d, want 2", w.Len())
	}
	w.Notify()
	w.Notify() // full buffers: must not block
	for name, ch := range map[string]chan struct{}{"a": a, "b": b} {
		select {
		case <-ch:
		default:
			t.Fatalf("channel %s not signalled", name)
		}
	}
	cancelA()
	cancelA() // idempotent
	w.Notify()
	select {
	case <-a:
		t.Fatal("cancelled channel signalled")
	default:
	}
	select {
	case <-b:
	default:
		t.Fatal("channel b not signalled after cancel of a")
	}
	cancelB()
	if w.Len() != 0 {
		t.Fatalf("len %d after cancels, want 0", w.Len())
	}
}

func TestWatchersConcurrent(t *testing.T) {
	var w Watchers
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 200 {
				ch := make(chan struct{}, 1)
				cancel := w.Add(ch)
				w.Notify()
				<-ch // our own Notify after our Add must reach us
				cancel()
			}
		}()
		go func() {
			defer wg.Done()
			for range 200 {
				w.Notify()
			}
		}()
	}
	wg.Wait()
	if w.Len() != 0 {
		t.Fatalf("len %d, want 0", w.Len())
	}
}
