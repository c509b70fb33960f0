package log

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/sluicelog/sluice/internal/vfs"
)

// Progressive write-back for the journal (log.flush.journal). A journaled
// round is acknowledged once its copy in the journal is durable; its
// segment bytes stay dirty in the page cache until a checkpoint's syncfs
// writes them back, every one the journal file's rounds left, at once:
// megabytes that the journal's own fdatasyncs, and so every ack, queue
// behind. So once a log's journal sync has acknowledged a round, the
// segment bytes written since the last hint are handed, in batches of
// writebackMinBytes, to one goroutine per log directory, which asks the
// kernel to start writing them back (vfs.StartWriteback:
// sync_file_range(SYNC_FILE_RANGE_WRITE), no wait) and the checkpoint's
// syncfs finds little left to write.
//
// It is only a hint: the checkpoint's syncfs is still what makes the
// segments durable and moves the recovery points, and what reports a
// write-back failure. A hint that fails, or is dropped because the queue
// is full, costs nothing but the stall it would have saved; it never
// fails a log, nor waits in one.

const (
	// writebackMinBytes batches the hints: one call per quarter MiB of a
	// log's segment, not one per round of a few KiB.
	writebackMinBytes = 256 << 10
	// writebackPageBytes: hints end on a page boundary, so the partly
	// filled last page, which the next round dirties again, is not
	// written back twice.
	writebackPageBytes = 4 << 10
	// writebackQueueLimit bounds the ranges waiting for the goroutine;
	// past it hints are dropped (and counted).
	writebackQueueLimit = 4096
)

// writebackRange is a segment range whose write-back to start.
type writebackRange struct {
	file   vfs.File
	off, n int64
}

// WritebackStats count the hints of a log directory's write-back.
type WritebackStats struct {
	Hints   int64 // ranges handed to the kernel
	Bytes   int64 // their bytes
	Failed  int64 // hints the file refused (closed meanwhile, or an I/O error)
	Dropped int64 // hints dropped with the queue full
}

// segmentWriteback is a log directory's write-back goroutine and its
// queue. minBytes is fixed at creation (writebackMinBytes; tests lower it).
type segmentWriteback struct {
	minBytes int64
	logger   *slog.Logger
	wake     chan struct{} // capacity 1: a pending wake-up
	stop     chan struct{}
	done     chan struct{}

	mu     sync.Mutex
	queue  []writebackRange
	closed bool
	stats  WritebackStats
}

func newSegmentWriteback(logger *slog.Logger, minBytes int64) *segmentWriteback {
	w := &segmentWriteback{minBytes: minBytes, logger: logger,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// add queues a range and returns at once. A range that continues the
// last one queued, of the same file, extends it.
func (w *segmentWriteback) add(f vfs.File, off, n int64) {
	w.mu.Lock()
	switch last := len(w.queue) - 1; {
	case w.closed:
	case last >= 0 && w.queue[last].file == f && w.queue[last].off+w.queue[last].n == off:
		w.queue[last].n += n
	case len(w.queue) >= writebackQueueLimit:
		w.stats.Dropped++
	default:
		w.queue = append(w.queue, writebackRange{file: f, off: off, n: n})
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *segmentWriteback) run() {
	defer close(w.done)
	var batch []writebackRange
	for {
		select {
		case <-w.stop:
			return
		case <-w.wake:
		}
		w.mu.Lock()
		batch, w.queue = w.queue, batch[:0]
		w.mu.Unlock()
		for _, r := range batch {
			w.start(r)
		}
		clear(batch) // drop the files
	}
}

// start hands one range to the kernel; a refusal is counted, not acted on.
func (w *segmentWriteback) start(r writebackRange) {
	err := vfs.StartWriteback(r.file, r.off, r.n)
	w.mu.Lock()
	if err != nil {
		w.stats.Failed++
	} else {
		w.stats.Hints++
		w.stats.Bytes += r.n
	}
	w.mu.Unlock()
	if err != nil {
		w.logger.Debug("segment write-back hint refused", "file", r.file.Name(), "offset", r.off, "bytes", r.n, "err", err)
	}
}

// Stats returns the running totals.
func (w *segmentWriteback) Stats() WritebackStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// close stops the goroutine, dropping hints not yet started.
func (w *segmentWriteback) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.queue = nil
	w.mu.Unlock()
	close(w.stop)
	<-w.done
}

// startWritebackLocked hints the write-back of the active segment's bytes
// from the last hint up to the last whole page written, once they reach
// the batch size. Called after a journal sync acknowledged rounds, so
// never before an ack; bytes of later rounds not yet acknowledged may be
// in the range, which is harmless for a hint.
func (l *Log) startWritebackLocked() {
	js := &l.journal
	if js.writeback == nil || len(l.segments) == 0 {
		return
	}
	s := l.active()
	if s != js.hintSegment {
		// A new segment (a roll, whose fsync wrote the old one back,
		// or a truncation): hints start at its beginning.
		js.hintSegment, js.hintedTo = s, 0
	}
	end := s.size &^ (writebackPageBytes - 1)
	js.hintedTo = min(js.hintedTo, end) // truncated below the last hint
	if end-js.hintedTo < js.writeback.minBytes || s.activeFile == nil {
		return
	}
	js.writeback.add(s.activeFile, js.hintedTo, end-js.hintedTo)
	js.hintedTo = end
}

// errWritebackNotOpen refuses a hint for a segment file the cache does
// not hold open: counted as refused, not as bytes handed to the kernel.
var errWritebackNotOpen = errors.New("segment file not open")

// StartWriteback hints the write-back of a range of the active segment,
// only if the cache holds its file open: reopening a closed file for a
// hint would cost a descriptor and an open to save nothing (a file
// closed while idle was synced first; a removed one is gone).
func (a *activeFile) StartWriteback(off, n int64) error {
	f := a.useIfOpen()
	if f == nil {
		return fmt.Errorf("segment %s: %w", a.sf.path, errWritebackNotOpen)
	}
	defer a.done(0)
	return vfs.StartWriteback(f, off, n)
}

// useIfOpen is use(false) for a file already open and not on its way to
// being closed or opened; nil otherwise. The caller calls done(0).
func (a *activeFile) useIfOpen() vfs.File {
	sf := a.sf
	c := sf.cache
	c.mu.Lock()
	defer c.unlock()
	if sf.file == nil || sf.shedding || sf.evicting || sf.opening || sf.removed {
		return nil
	}
	sf.unlistLocked()
	sf.refs++
	return sf.file
}
