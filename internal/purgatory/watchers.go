// Package purgatory holds what waits for a partition to move: long-polling
// fetches now, delayed acks=all produces once replication arrives. Kafka
// keeps such operations in a timing wheel per partition; Sluice keeps only
// a set of channels per partition and lets each waiter own its timer, so a
// partition nobody waits on costs one empty struct and no goroutine, timer
// or lock traffic (Notify on it is one atomic load).
package purgatory

import (
	"sync"
	"sync/atomic"
)

// Watchers is the set of channels to signal when a partition changes (its
// high watermark advances, it stops being led, it is deleted). The zero
// value is an empty set, ready to use; it must not be copied after first
// use.
//
// Each Notify does a non-blocking send on every channel, so a waiter needs a
// channel with a buffer of one: it then sees at least one signal after any
// change that followed its Add, and a slow waiter never blocks the appender
// that notifies. The set is not bounded here: its size is the number of
// requests parked on the partition, which the network layer bounds
// (connections × in-flight requests per connection).
type Watchers struct {
	count atomic.Int64 // len(set), read without the lock by Notify
	mu    sync.Mutex
	set   map[*watcher]struct{}
}

type watcher struct{ ch chan<- struct{} }

// Add registers ch and returns the function that removes it again; cancel
// is idempotent and must be called once the waiter stops waiting, or the
// set keeps the channel.
func (w *Watchers) Add(ch chan<- struct{}) (cancel func()) {
	entry := &watcher{ch: ch}
	w.mu.Lock()
	if w.set == nil {
		w.set = make(map[*watcher]struct{})
	}
	w.set[entry] = struct{}{}
	w.count.Store(int64(len(w.set)))
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			delete(w.set, entry)
			w.count.Store(int64(len(w.set)))
			w.mu.Unlock()
		})
	}
}

// Notify signals every registered channel without blocking: a channel whose
// buffer is full already has a signal pending, which is all a waiter needs.
func (w *Watchers) Notify() {
	if w.count.Load() == 0 {
		return // the common case on the append path: nobody is waiting
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for entry := range w.set {
		select {
		case entry.ch <- struct{}{}:
		default:
		}
	}
}

// Len is the number of registered channels.
func (w *Watchers) Len() int { return int(w.count.Load()) }
