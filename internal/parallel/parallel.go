// Package parallel runs a bounded number of calls at once. Opening,
// creating and closing thousands of partition logs is mostly waiting on
// the disk, which serves many requests at a time; both the log manager
// and the partition manager fan that work out the same way.
package parallel

import "sync"

// ForEach calls fn for every item on at most n goroutines and returns
// when all calls have. With one item, or n ≤ 1, it calls fn in turn on
// the caller's goroutine.
func ForEach[T any](items []T, n int, fn func(T)) {
	if len(items) <= 1 || n <= 1 {
		for _, it := range items {
			fn(it)
		}
		return
	}
	next := make(chan T)
	var wg sync.WaitGroup
	for range min(n, len(items)) {
		wg.Go(func() {
			for it := range next {
				fn(it)
			}
		})
	}
	for _, it := range items {
		next <- it
	}
	close(next)
	wg.Wait()
}
