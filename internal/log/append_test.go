package log

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/vfs"
)

// Appends queued with Enqueue by one caller are written by the first
// WaitDurable in one round: one write and one fsync for all of them, which
// is what lets a connection's pipelined produces share an fsync.
func TestLogEnqueuedAppendsShareOneRound(t *testing.T) {
	efs := vfs.NewErrorFS(vfs.NewMem())
	cfg := smallConfig()
	cfg.SegmentBytes = 1 << 20
	l, err := Open(efs, "/data/topic-0", Options{Config: cfg, Clock: clock.NewManual(time.UnixMilli(1_700_000_000_000)), Logger: quietLogger})
	noErr(t, err)
	defer l.Close()
	writes, syncs := efs.Count(vfs.OpWrite), efs.Count(vfs.OpSync)
	var batches [][]byte
	var last AppendInfo
	for i := range 3 {
		b := testBatch(t, "q", 2, 40, int64(1000+i))
		info, err := l.Enqueue(b, AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
		require(t, info.FirstOffset == int64(2*i) && info.LastOffset == int64(2*i+1), "enqueue %d got offsets %d..%d", i, info.FirstOffset, info.LastOffset)
		batches, last = append(batches, b), info
	}
	require(t, l.LogEndOffset() == 0, "queued appends visible before their round: log end %d", l.LogEndOffset())
	require(t, efs.Count(vfs.OpWrite) == writes, "Enqueue wrote")
	_, err = l.WaitDurable(last.LastOffset + 1)
	noErr(t, err)
	require(t, efs.Count(vfs.OpWrite)-writes == 1 && efs.Count(vfs.OpSync)-syncs == 1,
		"three queued appends took %d writes and %d fsyncs, want 1 and 1", efs.Count(vfs.OpWrite)-writes, efs.Count(vfs.OpSync)-syncs)
	require(t, l.LogEndOffset() == 6, "log end %d after the round", l.LogEndOffset())
	require(t, bytes.Equal(readAll(t, l, 0), bytes.Join(batches, nil)), "contents differ from the queued batches")
	// The earlier appends' waits find their offsets durable already.
	_, err = l.WaitDurable(2)
	noErr(t, err)
	require(t, efs.Count(vfs.OpSync)-syncs == 1, "a wait for durable offsets fsynced again")
	_, err = l.WaitDurable(7)
	require(t, err != nil, "a wait for an offset never appended succeeded")
}

// Enqueue reports the batches it queued through AppendOptions.Queued
// before it returns, so a caller that a panic inside it interrupts (a
// bug) knows whether the log holds its bytes and at which offsets; a
// refused append leaves it as it was.
func TestLogEnqueueReportsWhatItQueued(t *testing.T) {
	l, err := Open(vfs.NewMem(), "/data/topic-0", Options{Config: smallConfig(), Clock: clock.NewManual(time.UnixMilli(1_700_000_000_000)), Logger: quietLogger})
	noErr(t, err)
	defer l.Close()
	queued := AppendInfo{FirstOffset: -1, LastOffset: -1}
	_, err = l.Enqueue([]byte("not a batch"), AppendOptions{LeaderEpoch: -1, Queued: &queued})
	require(t, err != nil && queued.LastOffset == -1, "a refused append: %v, reported queued %+v", err, queued)
	_, err = l.Append(testBatch(t, "a", 3, 40, 1000), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	info, err := l.Enqueue(testBatch(t, "b", 2, 40, 1001), AppendOptions{LeaderEpoch: -1, Queued: &queued})
	noErr(t, err)
	require(t, queued == info && queued.FirstOffset == 3 && queued.LastOffset == 4, "reported %+v, Enqueue returned %+v", queued, info)
	_, err = l.WaitDurable(queued.LastOffset + 1)
	noErr(t, err)
}

// An append whose round another goroutine wrote, and whose offsets a
// truncation then removed before the append saw its round complete, must
// return an error: it used to wait for a durable end the log would never
// reach again, writing empty rounds forever. The truncation's own wait for
// an idle log writes the round half the time, so the test repeats.
func TestLogAppendTruncatedWhileWaitingFails(t *testing.T) {
	for i := range 20 {
		cfg := smallConfig()
		cfg.SegmentBytes = 1 << 20
		fl := openFaultLog(t, cfg)
		// Round 1 (append A) is held in its fsync while B is written and
		// the truncation waits; round 2 (B's sync) is held so either B or
		// the truncation is the syncer when it ends.
		gate := newFaultGate(fl.probe, 1, 2)
		appended := make(chan error, 2)
		appendOne := func(tag string) {
			_, err := fl.Log.Append(testBatch(t, tag, 2, 50, 1_700_000_000_000), AppendOptions{LeaderEpoch: -1})
			appended <- err
		}
		go appendOne("a")
		faultWait(t, gate.entered[1], "round 1 to reach its fsync")
		go appendOne("b")
		fl.waitWritten(t, 4) // A's 2 records and B's, B's written during A's sync
		truncated := make(chan error, 1)
		go func() { truncated <- fl.Truncate(1) }()
		close(gate.held[1])
		faultWait(t, gate.entered[2], "round 2 to reach its fsync")
		close(gate.held[2])
		var errs []error
		for range 2 {
			select {
			case err := <-appended:
				errs = append(errs, err)
			case <-time.After(10 * time.Second):
				t.Fatalf("run %d: an append hung after a truncation removed its offsets", i)
			}
		}
		noErr(t, <-truncated)
		// A's round completed before the truncation could start, so A
		// succeeded; B did only if it saw its round before the cut.
		failed := 0
		for _, err := range errs {
			require(t, err == nil || errors.Is(err, ErrAppendTruncated), "run %d: append: %v", i, err)
			if err != nil {
				failed++
			}
		}
		require(t, failed <= 1, "run %d: both appends failed", i)
		require(t, fl.LogEndOffset() == 0, "run %d: log end %d after truncating to 1", i, fl.LogEndOffset())
		fl.probe.setHook(nil)
		noErr(t, fl.Close())
	}
}

// The offsets an append was given may go to another append after a
// truncation; the first append's wait must fail, not take the second's
// round as its own.
func TestLogWaitAfterTruncationDoesNotTakeAnotherAppendsOffsets(t *testing.T) {
	l, err := Open(vfs.NewMem(), "/data/topic-0", Options{Config: smallConfig(), Logger: quietLogger})
	noErr(t, err)
	defer l.Close()
	first, err := l.Enqueue(testBatch(t, "first", 2, 40, 1000), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	noErr(t, l.Truncate(1)) // writes the round, then cuts the batch holding offset 1
	_, err = l.Append(testBatch(t, "second", 3, 40, 1000), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	l.mu.Lock()
	err = l.waitDurableLocked(first.LastOffset+1, first.truncations)
	l.mu.Unlock()
	require(t, errors.Is(err, ErrAppendTruncated), "the truncated append's wait: %v, want ErrAppendTruncated", err)
}

// TestLogFlushAlwaysAfterNeverSyncsSealedSegments: segments sealed without
// an fsync under flush.policy=never hold the syncer off (the recovery point
// may not pass them), so once the policy is always the next round must
// sync them; otherwise its append never became durable.
func TestLogFlushAlwaysAfterNeverSyncsSealedSegments(t *testing.T) {
	cfg := smallConfig()
	cfg.FlushPolicy = FlushNever
	// Not closed on failure: Close would wait for the stuck round.
	tl := openTestLog(t, cfg)
	for i := 0; tl.NumSegments() < 3; i++ {
		_, err := tl.Append(testBatch(t, strconv.Itoa(i), 1, 500, 1), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	require(t, tl.RecoveryPoint() < tl.LogEndOffset(), "recovery point %d at the log end %d under never", tl.RecoveryPoint(), tl.LogEndOffset())

	cfg.FlushPolicy = FlushAlways
	noErr(t, tl.SetConfig(cfg))
	done := make(chan error, 1)
	var info AppendInfo
	go func() {
		var err error
		info, err = tl.Append(testBatch(t, "always", 1, 10, 1), AppendOptions{LeaderEpoch: -1})
		done <- err
	}()
	noErr(t, resultOf(t, done, "the append under always"))
	end := info.LastOffset + 1
	require(t, tl.RecoveryPoint() == end && tl.LogEndOffset() == end,
		"recovery point %d, log end offset %d after an acknowledged append under always; want %d", tl.RecoveryPoint(), tl.LogEndOffset(), end)
	noErr(t, tl.Close())
}
