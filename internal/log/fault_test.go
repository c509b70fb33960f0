package log

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// Fault tests: the log on ErrorFS over MemFS. A failed write or fsync must
// reach every append waiting on it as ErrStorage (still wrapping the errno,
// so a full disk reads as ENOSPC), stay sticky without touching the disk
// again, never be acknowledged, leave acknowledged data readable, leak no
// file handle, and lose nothing acknowledged when the log is reopened on the
// same disk, after a crash or not.

// faultLog is a log on probe(ErrorFS(MemFS)) with the history of its appends.
type faultLog struct {
	*Log
	mem   *vfs.MemFS
	efs   *vfs.ErrorFS
	probe *crashProbeFS
	clock *clock.Manual
	cfg   Config

	mu       sync.Mutex
	attempts []crashAppend // appends that got offsets, acknowledged or not
	ackedEnd int64
}

const faultDir = "/data/orders-0"

func openFaultLog(t *testing.T, cfg Config) *faultLog {
	t.Helper()
	mem := vfs.NewMem()
	fl := &faultLog{mem: mem, efs: vfs.NewErrorFS(mem), clock: clock.NewManual(time.UnixMilli(1_700_000_000_000)), cfg: cfg}
	fl.probe = newCrashProbe(fl.efs)
	l, err := Open(fl.probe, faultDir, Options{Config: cfg, Clock: fl.clock, Logger: quietLogger})
	noErr(t, err)
	fl.Log = l
	return fl
}

// append appends buf and records what the log said. Safe for concurrent use.
func (fl *faultLog) append(buf []byte) (AppendInfo, error) {
	info, err := fl.Append(buf, AppendOptions{LeaderEpoch: -1})
	fl.mu.Lock()
	defer fl.mu.Unlock()
	// Every test appends acknowledged batches first, so an append that got
	// offsets has a first offset above 0; one refused up front has 0.
	if err == nil || info.FirstOffset > 0 {
		fl.attempts = append(fl.attempts, crashAppend{buf: buf, first: info.FirstOffset, last: info.LastOffset})
	}
	if err == nil {
		fl.ackedEnd = max(fl.ackedEnd, info.LastOffset+1)
	}
	return info, err
}

func (fl *faultLog) appendAcked(t *testing.T, n int, tag string) {
	t.Helper()
	for i := 0; i < n; i++ {
		_, err := fl.append(testBatch(t, fmt.Sprintf("%s%d", tag, i), 1+i%3, 150, 1_700_000_000_000+int64(i)))
		noErr(t, err)
	}
}

// universe is everything that got offsets, in offset order: what a reopened
// log may hold a prefix of. acked is its part below the acknowledged end.
func (fl *faultLog) universe(t *testing.T) (all, acked []byte) {
	t.Helper()
	h := crashHistory{appends: fl.attempts}
	all = h.expected(t, 0)
	for _, a := range h.appends {
		if a.last < fl.ackedEnd {
			acked = append(acked, a.buf...)
		}
	}
	return all, acked
}

// waitWritten waits until the offsets below end are written (and nothing
// is being written) while the sync before them may still be held: under
// FlushAlways the appends that arrive during a sync are written during it
// (pipelined group commit), and wait only for the sync after it.
func (fl *faultLog) waitWritten(t *testing.T, end int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fl.Log.mu.Lock()
		written, writing, queued := fl.writtenEnd, fl.writing, len(fl.queue)
		fl.Log.mu.Unlock()
		if written >= end && !writing {
			return
		}
		require(t, time.Now().Before(deadline), "written up to %d (%d appends queued), waiting for %d", written, queued, end)
		time.Sleep(time.Millisecond)
	}
}

// checkFailed checks a log after a storage failure caused by cause: the
// error is sticky and reported, nothing touches the disk any more, what was
// acknowledged still reads back, and Close leaves no handle open.
func checkFailed(t *testing.T, fl *faultLog, cause error) {
	t.Helper()
	require(t, errors.Is(fl.Err(), ErrStorage) && errors.Is(fl.Err(), cause), "Err() = %v, want ErrStorage wrapping %v", fl.Err(), cause)
	ops := fl.efs.Count(vfs.OpAny)
	_, err := fl.append(testBatch(t, "refused", 1, 10, 1_700_000_000_000))
	require(t, errors.Is(err, ErrStorage), "append after a failure: %v, want ErrStorage", err)
	require(t, errors.Is(fl.Flush(), ErrStorage), "Flush after a failure: %v", fl.Flush())
	require(t, errors.Is(fl.Truncate(1), ErrStorage), "Truncate after a failure must refuse")
	_, err = fl.DeleteExpiredSegments(1 << 62)
	require(t, errors.Is(err, ErrStorage), "retention after a failure: %v", err)
	require(t, fl.efs.Count(vfs.OpAny) == ops, "a failed log did I/O for appends, flushes or deletions (%d operations)", fl.efs.Count(vfs.OpAny)-ops)

	_, acked := fl.universe(t)
	require(t, fl.LogEndOffset() == fl.ackedEnd, "log end offset %d after a failure, acknowledged up to %d", fl.LogEndOffset(), fl.ackedEnd)
	require(t, string(readAll(t, fl.Log, 0)) == string(acked), "acknowledged data no longer reads back after a failure")

	err = fl.Close()
	require(t, err == nil || errors.Is(err, ErrStorage), "Close of a failed log: %v", err)
	require(t, fl.files.OpenFiles() == 0, "file cache counts %d open files after Close", fl.files.OpenFiles())
	require(t, fl.probe.openHandles.Load() == 0, "%d file handles left open after a failure and Close", fl.probe.openHandles.Load())
}

// checkReopen reopens a failed (and closed) log's disk twice, after a crash
// and as it is, and checks that every acknowledged batch survived (under
// FlushAlways; otherwise everything below durable, the recovery point read
// before the failure) and that appends continue at the log end offset.
func checkReopen(t *testing.T, fl *faultLog, rng *rand.Rand, durable int64) {
	t.Helper()
	universe, _ := fl.universe(t)
	if fl.cfg.FlushPolicy == FlushAlways {
		durable = max(durable, fl.ackedEnd)
	}
	for _, crash := range []bool{true, false} {
		mem := fl.mem
		required := fl.ackedEnd // nothing lost without a crash: it is all in the page cache
		if crash {
			mem, required = fl.mem.CrashClone(rng), durable
		}
		probe := newCrashProbe(mem)
		l, err := Open(probe, faultDir, Options{Config: fl.cfg, Clock: fl.clock, Logger: quietLogger})
		noErr(t, err)
		recovered := checkRecovered(t, l, universe, required)
		checkAppendAfterRecovery(t, l, recovered)
		closeAndCheckHandles(t, l, probe)
	}
}

// faultGate holds the n-th fsync of a .log file (counting from 1) until
// released, so a test can queue appends behind a writer stuck in it.
type faultGate struct {
	mu      sync.Mutex
	syncs   int
	held    map[int]chan struct{}
	entered map[int]chan struct{}
}

func newFaultGate(probe *crashProbeFS, holds ...int) *faultGate {
	g := &faultGate{held: map[int]chan struct{}{}, entered: map[int]chan struct{}{}}
	for _, n := range holds {
		g.held[n], g.entered[n] = make(chan struct{}), make(chan struct{})
	}
	probe.setHook(func(op vfs.Op, path string) error {
		if op != vfs.OpSync || !strings.HasSuffix(path, logSuffix) {
			return nil
		}
		g.mu.Lock()
		g.syncs++
		held, entered := g.held[g.syncs], g.entered[g.syncs]
		g.mu.Unlock()
		if held != nil {
			close(entered)
			<-held
		}
		return nil
	})
	return g
}

// faultWait waits for ch to close, failing instead of hanging.
func faultWait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestLogFaultFsyncFailsEveryWaiter fails the fsync of a round that carries
// several appends while more wait behind it: every one of them must get
// ErrStorage, none may be acknowledged, and the log stays failed.
func TestLogFaultFsyncFailsEveryWaiter(t *testing.T) {
	crashRun(t, crashSeeds(t, 3, 30), func(t *testing.T, seed uint64) {
		cfg := smallConfig()
		cfg.SegmentBytes = 1 << 20
		fl := openFaultLog(t, cfg)
		fl.appendAcked(t, 10, "acked")
		rp := fl.RecoveryPoint()

		// Round 1 (one append) is held in its fsync while the appends of
		// round 2 queue; round 2 is held while those of round 3 queue.
		gate := newFaultGate(fl.probe, 1, 2)
		const inRound2, inRound3 = 4, 3
		results := make(chan error, 1+inRound2+inRound3)
		start := func(n int, tag string) {
			for i := 0; i < n; i++ {
				go func() {
					_, err := fl.append(testBatch(t, tag, 2, 50, 1_700_000_000_000))
					results <- err
				}()
			}
		}
		start(1, "round1")
		faultWait(t, gate.entered[1], "round 1 to reach its fsync")
		end := fl.LogEndOffset() + 2 // round 1's batch of 2 records
		start(inRound2, "round2")
		end += 2 * inRound2
		fl.waitWritten(t, end)
		close(gate.held[1])
		require(t, <-results == nil, "round 1 failed with nothing injected")
		faultWait(t, gate.entered[2], "round 2 to reach its fsync")
		start(inRound3, "round3")
		end += 2 * inRound3
		fl.waitWritten(t, end)
		fl.efs.Inject(vfs.Rule{Op: vfs.OpSync, PathContains: logSuffix})
		close(gate.held[2])
		for i := 0; i < inRound2+inRound3; i++ {
			err := <-results
			require(t, errors.Is(err, ErrStorage) && errors.Is(err, syscall.EIO), "waiter %d: %v, want ErrStorage wrapping EIO", i, err)
		}
		fl.probe.setHook(nil)
		require(t, fl.efs.Injected() == 1, "injected %d faults, want 1", fl.efs.Injected())
		checkFailed(t, fl, syscall.EIO)
		checkReopen(t, fl, crashRand(seed, 1), rp)
	})
}

// TestLogFaultFlushFails fails the fsync behind Flush under the policies
// that do not sync on append: Flush reports it and the log turns read-only.
func TestLogFaultFlushFails(t *testing.T) {
	for _, policy := range []FlushPolicy{FlushInterval, FlushNever} {
		t.Run(policy.String(), func(t *testing.T) {
			cfg := smallConfig()
			cfg.FlushPolicy, cfg.FlushMs = policy, 1_000_000
			fl := openFaultLog(t, cfg)
			fl.appendAcked(t, 20, "acked") // rolls a few 4 KiB segments
			rp := fl.RecoveryPoint()
			fl.efs.Inject(vfs.Rule{Op: vfs.OpSync})
			err := fl.Flush()
			require(t, errors.Is(err, ErrStorage) && errors.Is(err, syscall.EIO), "Flush: %v, want ErrStorage wrapping EIO", err)
			checkFailed(t, fl, syscall.EIO)
			checkReopen(t, fl, crashRand(uint64(policy), 1), rp)
		})
	}
}

// TestLogFaultDiskFull fills the disk in the middle of an append: the error
// must say so (ENOSPC, and ErrStorage for the edge), the bytes that made it
// to the file must not be acknowledged, and recovery must cut them off.
func TestLogFaultDiskFull(t *testing.T) {
	one := testBatch(t, "full", 3, 100, 1_700_000_000_000)
	three := append(append(testBatch(t, "x", 1, 40, 1), testBatch(t, "y", 2, 40, 2)...), testBatch(t, "z", 1, 40, 3)...)
	first, _, _, err := record.NextBatch(three)
	noErr(t, err)
	cases := []struct {
		name    string
		payload []byte
		partial int
	}{
		{"nothing written", one, 0},
		{"one byte", one, 1},
		{"inside the header", one, 30},
		{"header only", one, record.HeaderSize},
		{"all but one byte", one, len(one) - 1},
		{"first of three batches whole", three, len(first)},
		{"inside the second of three", three, len(first) + 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fl := openFaultLog(t, smallConfig())
			fl.appendAcked(t, 3, "acked")
			rp := fl.RecoveryPoint()
			sizeBefore := fl.Size()
			fl.efs.Inject(vfs.Rule{Op: vfs.OpWrite, PathContains: logSuffix, Err: vfs.ErrDiskFull, PartialBytes: c.partial})
			_, err := fl.append(append([]byte(nil), c.payload...))
			require(t, errors.Is(err, ErrStorage) && errors.Is(err, syscall.ENOSPC) && errors.Is(err, vfs.ErrDiskFull), "append on a full disk: %v", err)
			require(t, strings.Contains(err.Error(), "no space left on device") && strings.Contains(err.Error(), faultDir),
				"the error should name the log and the cause: %q", err)
			info, statErr := fl.mem.Stat(faultDir + "/" + segmentFileName(0, logSuffix))
			noErr(t, statErr)
			require(t, info.Size() == sizeBefore+int64(c.partial), "segment is %d bytes, want %d + %d partial", info.Size(), sizeBefore, c.partial)
			checkFailed(t, fl, syscall.ENOSPC)
			checkReopen(t, fl, crashRand(uint64(c.partial), 1), rp)

			// Recovery cut the file back to whole batches.
			l, err := Open(fl.mem, faultDir, Options{Config: fl.cfg, Clock: fl.clock, Logger: quietLogger})
			noErr(t, err)
			defer l.Close()
			info, statErr = fl.mem.Stat(faultDir + "/" + segmentFileName(0, logSuffix))
			noErr(t, statErr)
			require(t, info.Size() == l.Size(), "after recovery the file is %d bytes, the log %d", info.Size(), l.Size())
		})
	}
}

// faultOp is one file operation of a traced run, to name a failure.
type faultOp struct {
	op   vfs.Op
	path string
}

// traceOps records every operation the probe sees while fn runs.
func traceOps(probe *crashProbeFS, fn func()) []faultOp {
	var mu sync.Mutex
	var ops []faultOp
	probe.setHook(func(op vfs.Op, path string) error {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, faultOp{op, path})
		return nil
	})
	fn()
	probe.setHook(nil)
	return ops
}

// TestLogFaultPipelinedRoundWaitsForItsOwnSync: under FlushAlways a round
// written while the sync before it runs is not acknowledged by that sync
// (it may have begun before the write), nor shown to readers, but only by
// the next; when that one fails, the round fails and what the first sync
// acknowledged survives a crash.
func TestLogFaultPipelinedRoundWaitsForItsOwnSync(t *testing.T) {
	crashRun(t, crashSeeds(t, 3, 30), func(t *testing.T, seed uint64) {
		cfg := smallConfig()
		cfg.SegmentBytes = 1 << 20
		fl := openFaultLog(t, cfg)
		fl.appendAcked(t, 3, "acked")
		rp := fl.RecoveryPoint()
		gate := newFaultGate(fl.probe, 1, 2)
		first, second := make(chan error, 1), make(chan error, 1)
		go func() {
			_, err := fl.append(testBatch(t, "first", 2, 50, 1_700_000_000_000))
			first <- err
		}()
		faultWait(t, gate.entered[1], "the first round's sync")
		firstEnd := rp + 2
		go func() {
			_, err := fl.append(testBatch(t, "second", 2, 50, 1_700_000_000_000))
			second <- err
		}()
		fl.waitWritten(t, firstEnd+2) // written while the first sync is held
		require(t, fl.LogEndOffset() == rp, "log end offset %d shows unsynced rounds, want %d", fl.LogEndOffset(), rp)
		close(gate.held[1])
		noErr(t, resultOf(t, first, "the first round"))
		select {
		case err := <-second:
			t.Fatalf("the second round returned (%v) after a sync that began before its write", err)
		case <-gate.entered[2]:
		case <-time.After(10 * time.Second):
			t.Fatal("timed out waiting for the second round's sync")
		}
		require(t, fl.RecoveryPoint() == firstEnd && fl.LogEndOffset() == firstEnd,
			"recovery point %d, log end offset %d while the second sync runs; want %d", fl.RecoveryPoint(), fl.LogEndOffset(), firstEnd)
		fl.efs.Inject(vfs.Rule{Op: vfs.OpSync, PathContains: logSuffix})
		close(gate.held[2])
		err := resultOf(t, second, "the second round")
		require(t, errors.Is(err, ErrStorage) && errors.Is(err, syscall.EIO), "second round: %v, want ErrStorage wrapping EIO", err)
		fl.probe.setHook(nil)
		checkFailed(t, fl, syscall.EIO)
		checkReopen(t, fl, crashRand(seed, 1), firstEnd)
	})
}

// segmentSyncs holds the first fsync of a segment file until held closes,
// and notes whether two fsyncs of one segment file ever ran at once.
type segmentSyncs struct {
	held, entered chan struct{}
	mu            sync.Mutex
	inFlight      map[string]int
	overlap       bool
	first         bool
}

func watchSegmentSyncs(fl *faultLog) *segmentSyncs {
	w := &segmentSyncs{held: make(chan struct{}), entered: make(chan struct{}), inFlight: map[string]int{}, first: true}
	fl.probe.setHook(func(op vfs.Op, path string) error {
		if op != vfs.OpSync || !strings.HasSuffix(path, logSuffix) {
			return nil
		}
		w.mu.Lock()
		w.inFlight[path]++
		w.overlap = w.overlap || w.inFlight[path] > 1
		hold := w.first
		w.first = false
		w.mu.Unlock()
		if hold {
			close(w.entered)
			<-w.held
		}
		w.mu.Lock()
		w.inFlight[path]--
		w.mu.Unlock()
		return nil
	})
	return w
}

func (w *segmentSyncs) overlapped() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.overlap
}

// TestLogFaultCloseWaitsForTheSyncInFlight: Close while the syncer's fsync
// runs and a round written during it waits for its sync waits for both,
// acknowledges both, and never fsyncs the segment beside the syncer.
func TestLogFaultCloseWaitsForTheSyncInFlight(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 1 << 20
	fl := openFaultLog(t, cfg)
	fl.appendAcked(t, 2, "acked")
	syncs := watchSegmentSyncs(fl)
	done := make(chan error, 2)
	go func() {
		_, err := fl.append(testBatch(t, "first", 2, 50, 1_700_000_000_000))
		done <- err
	}()
	faultWait(t, syncs.entered, "the first round's sync")
	end := fl.LogEndOffset() + 4
	go func() {
		_, err := fl.append(testBatch(t, "second", 2, 50, 1_700_000_000_000))
		done <- err
	}()
	fl.waitWritten(t, end)
	closed := make(chan error, 1)
	go func() { closed <- fl.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a sync of the log ran", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(syncs.held)
	noErr(t, resultOf(t, done, "the first append"))
	noErr(t, resultOf(t, done, "the second append"))
	noErr(t, resultOf(t, closed, "Close"))
	fl.probe.setHook(nil)
	require(t, !syncs.overlapped(), "two fsyncs of one segment ran at once")
	require(t, fl.ackedEnd == end, "acknowledged up to %d, want %d", fl.ackedEnd, end)
	_, acked := fl.universe(t)
	l, err := Open(fl.mem, faultDir, Options{Config: cfg, Clock: fl.clock, Logger: quietLogger})
	noErr(t, err)
	defer l.Close()
	require(t, l.LogEndOffset() == end, "reopened at %d, want %d", l.LogEndOffset(), end)
	require(t, string(readAll(t, l, 0)) == string(acked), "acknowledged data does not read back after Close")
}

// TestLogFaultRollWaitsForTheSyncInFlight: a round that rolls the segment
// the syncer is fsyncing waits for that fsync before its own of the same
// file (two at once could split a writeback error between them), and
// every append is acknowledged once both are done.
func TestLogFaultRollWaitsForTheSyncInFlight(t *testing.T) {
	cfg := smallConfig()
	fl := openFaultLog(t, cfg)
	syncs := watchSegmentSyncs(fl)
	held, entered := syncs.held, syncs.entered
	done := make(chan error, 64)
	appends := 0
	appendAsync := func(b []byte) {
		appends++
		go func() {
			_, err := fl.append(b)
			done <- err
		}()
	}
	appendAsync(testBatch(t, "synced", 3, 150, 1_700_000_000_000))
	faultWait(t, entered, "the first round's sync")
	for {
		b := testBatch(t, "fill", 3, 150, 1_700_000_000_000)
		fl.Log.mu.Lock()
		full := fl.active().size+int64(len(b)) > cfg.SegmentBytes
		next := fl.nextOffset + 3
		fl.Log.mu.Unlock()
		appendAsync(b)
		if full {
			break // this one rolls
		}
		fl.waitWritten(t, next) // during the held sync
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fl.Log.mu.Lock()
		paused := fl.syncsPaused
		fl.Log.mu.Unlock()
		require(t, !syncs.overlapped(), "the roll fsynced the segment while the syncer's fsync of it ran")
		if paused {
			break // the roll waits for the held sync
		}
		require(t, time.Now().Before(deadline), "timed out waiting for the roll")
		time.Sleep(time.Millisecond)
	}
	close(held)
	for range appends {
		noErr(t, resultOf(t, done, "the appends"))
	}
	fl.probe.setHook(nil)
	require(t, !syncs.overlapped(), "two fsyncs of one segment ran at once")
	require(t, fl.NumSegments() == 2, "the append did not roll")
	require(t, fl.LogEndOffset() == fl.ackedEnd && fl.RecoveryPoint() == fl.ackedEnd,
		"log end offset %d, recovery point %d, acknowledged up to %d", fl.LogEndOffset(), fl.RecoveryPoint(), fl.ackedEnd)
	noErr(t, fl.Close())
}

// TestLogFaultRollAfterAFailedSyncAcknowledgesNothing: the syncer's fsync
// of the active segment fails while the writer waits to roll that segment.
// The roll must not fsync it again and publish the round: Linux reports a
// writeback error once per descriptor, so that second fsync can succeed
// over the bytes the first one lost, and the recovery point would pass
// them. Everything written before the failed fsync stays unacknowledged.
func TestLogFaultRollAfterAFailedSyncAcknowledgesNothing(t *testing.T) {
	cfg := smallConfig()
	fl := openFaultLog(t, cfg)
	fill := testBatch(t, "fill", 3, 150, 1_700_000_000_000)
	lost := testBatch(t, "lost", 1, 50, 1_700_000_000_000)
	for {
		fl.Log.mu.Lock()
		room := cfg.SegmentBytes - fl.active().size
		fl.Log.mu.Unlock()
		if room < int64(len(fill)+len(lost)) {
			break
		}
		_, err := fl.append(testBatch(t, "acked", 3, 150, 1_700_000_000_000))
		noErr(t, err)
	}
	durable := fl.RecoveryPoint()
	held, entered := make(chan struct{}), make(chan struct{})
	var syncs atomic.Int64
	fl.probe.setHook(func(op vfs.Op, path string) error {
		if op != vfs.OpSync || !strings.HasSuffix(path, logSuffix) || syncs.Add(1) != 1 {
			return nil
		}
		close(entered)
		<-held
		return syscall.EIO // the kernel reports this writeback error once
	})
	defer fl.probe.setHook(nil)

	// The round holding lost is written; its sync is held.
	info, err := fl.Enqueue(lost, AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	lostEnd := info.LastOffset + 1
	fl.mu.Lock()
	fl.attempts = append(fl.attempts, crashAppend{buf: lost, first: info.FirstOffset, last: info.LastOffset})
	fl.mu.Unlock()
	fl.Write(lostEnd)
	syncer := make(chan error, 1)
	go func() {
		_, err := fl.WaitDurable(lostEnd)
		syncer <- err
	}()
	faultWait(t, entered, "the sync of the round holding lost")
	// The next round does not fit: its writer rolls, and waits for the sync.
	rolled := make(chan error, 1)
	go func() {
		_, err := fl.append(fill)
		rolled <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fl.Log.mu.Lock()
		paused := fl.syncsPaused
		fl.Log.mu.Unlock()
		if paused {
			break
		}
		require(t, time.Now().Before(deadline), "timed out waiting for the roll")
		time.Sleep(time.Millisecond)
	}
	close(held)
	err = resultOf(t, syncer, "the syncer")
	require(t, errors.Is(err, ErrStorage) && errors.Is(err, syscall.EIO), "the failed sync's waiter: %v, want ErrStorage wrapping EIO", err)
	err = resultOf(t, rolled, "the rolling append")
	require(t, errors.Is(err, ErrStorage), "the append written after a failed sync: %v, want ErrStorage", err)

	// A later wait for lost (a duplicate of the batch, another produce
	// waiting on it) must fail too, and nothing past the failure shows.
	_, err = fl.WaitDurable(lostEnd)
	require(t, errors.Is(err, ErrStorage), "lost acknowledged after its fsync failed: WaitDurable = %v", err)
	require(t, fl.RecoveryPoint() == durable && fl.LogEndOffset() == durable,
		"recovery point %d, log end offset %d after the failed sync; only %d was synced", fl.RecoveryPoint(), fl.LogEndOffset(), durable)
	checkFailed(t, fl, syscall.EIO)
}

// faultKinds are the ways each operation is failed in the exhaustive tests:
// an I/O error, and a full disk that lets a few bytes of a write through.
var faultKinds = []struct {
	name    string
	err     error
	errno   syscall.Errno
	partial int
}{
	{"EIO", vfs.ErrInjected, syscall.EIO, 0},
	{"ENOSPC", vfs.ErrDiskFull, syscall.ENOSPC, 10},
}

// TestLogFaultEveryRollStep fails, one at a time, each file operation of an
// append that rolls a segment (sync and index files of the old segment,
// creating the new one, syncing the directory, opening, writing and syncing
// the new one), under a syncing and a non-syncing policy. Each failure must
// poison the log and leave it recoverable with nothing acknowledged lost.
func TestLogFaultEveryRollStep(t *testing.T) {
	for _, policy := range []FlushPolicy{FlushAlways, FlushNever} {
		setup := func(t *testing.T) (*faultLog, []byte) {
			cfg := smallConfig()
			cfg.FlushPolicy = policy
			fl := openFaultLog(t, cfg)
			for {
				b := testBatch(t, "fill", 3, 150, 1_700_000_000_000)
				fl.Log.mu.Lock()
				full := fl.active().size+int64(len(b)) > cfg.SegmentBytes
				fl.Log.mu.Unlock()
				if full {
					return fl, b
				}
				_, err := fl.append(b)
				noErr(t, err)
			}
		}
		fl, roll := setup(t)
		ops := traceOps(fl.probe, func() {
			_, err := fl.append(roll)
			noErr(t, err)
		})
		require(t, fl.NumSegments() == 2, "the traced append did not roll")
		t.Logf("%v: a rolling append does %d file operations", policy, len(ops))
		noErr(t, fl.Close())
		t.Run(policy.String(), func(t *testing.T) {
			crashRun(t, crashSeeds(t, 1, 10), func(t *testing.T, seed uint64) {
				rng := crashRand(seed, 0)
				for i, op := range ops {
					for _, kind := range faultKinds {
						fl, roll := setup(t)
						rp := fl.RecoveryPoint()
						fl.efs.Inject(vfs.Rule{After: i, Err: kind.err, PartialBytes: kind.partial})
						_, err := fl.append(roll)
						require(t, errors.Is(err, ErrStorage) && errors.Is(err, kind.errno), "%s of operation %d (%v %s): append returned %v", kind.name, i, op.op, op.path, err)
						checkFailed(t, fl, kind.errno)
						checkReopen(t, fl, rng, rp)
					}
				}
			})
		})
	}
}

// TestLogFaultEveryCloseStep fails each file operation of Close in turn
// (the final fsyncs and the active segment's index files). Close must report
// it and release every file; reopening must lose nothing, even when told
// (wrongly) that the shutdown was clean: index files a failed Close left
// half written must be detected, not trusted.
func TestLogFaultEveryCloseStep(t *testing.T) {
	for _, policy := range []FlushPolicy{FlushAlways, FlushNever} {
		setup := func(t *testing.T) *faultLog {
			cfg := smallConfig()
			cfg.FlushPolicy = policy
			fl := openFaultLog(t, cfg)
			fl.appendAcked(t, 14, "acked") // two segments and a bit
			return fl
		}
		fl := setup(t)
		var closeErr error
		ops := traceOps(fl.probe, func() { closeErr = fl.Close() })
		noErr(t, closeErr)
		t.Logf("%v: Close does %d file operations", policy, len(ops))
		t.Run(policy.String(), func(t *testing.T) {
			for i, op := range ops {
				for _, kind := range faultKinds {
					fl := setup(t)
					end := fl.LogEndOffset()
					all, _ := fl.universe(t)
					fl.efs.Inject(vfs.Rule{After: i, Err: kind.err, PartialBytes: kind.partial})
					err := fl.Close()
					require(t, err != nil && errors.Is(err, kind.errno), "%s of operation %d (%v %s): Close returned %v", kind.name, i, op.op, op.path, err)
					require(t, fl.probe.openHandles.Load() == 0, "%d handles open after a failed Close", fl.probe.openHandles.Load())
					for _, opts := range []Options{{}, {RecoveryPoint: end, CleanShutdown: true}} {
						opts.Config, opts.Clock, opts.Logger = fl.cfg, fl.clock, quietLogger
						probe := newCrashProbe(fl.mem)
						l, err := Open(probe, faultDir, opts)
						noErr(t, err)
						recovered := checkRecovered(t, l, all, end)
						require(t, len(recovered) == len(all), "%s of operation %d (%v %s): reopened with %+v, lost data", kind.name, i, op.op, op.path, opts)
						closeAndCheckHandles(t, l, probe)
					}
				}
			}
		})
	}
}

// TestLogFaultEveryOpenStep fails each file operation of Open in turn, on
// logs that need the different kinds of recovery: a torn tail, a lost index
// to rebuild, a recovery point inside the log, a clean shutdown. A failed
// Open must return an error and leave no file open; one that shrugs the
// fault off (a best-effort index write) must still hold the right data; and
// after any failure, the next Open must recover everything.
func TestLogFaultEveryOpenStep(t *testing.T) {
	for _, variant := range []string{"torn tail", "recovery point", "lost time index", "clean shutdown"} {
		t.Run(variant, func(t *testing.T) {
			base, opts := faultOpenFixture(t, variant)
			rng := crashRand(1, 1)
			open := func(fsys vfs.FS) (*Log, error) { return Open(fsys, faultDir, opts) }
			reference := base.CrashClone(rng) // everything is synced: an exact copy
			l, err := open(reference)
			noErr(t, err)
			want := readAll(t, l, 0)
			noErr(t, l.Close())

			efs := vfs.NewErrorFS(base.CrashClone(rng))
			probe := newCrashProbe(efs)
			var opened *Log
			ops := traceOps(probe, func() {
				opened, err = open(probe)
				noErr(t, err)
			})
			noErr(t, opened.Close())
			t.Logf("Open does %d file operations", len(ops))
			for i, op := range ops {
				for _, kind := range faultKinds {
					mem := base.CrashClone(rng)
					efs := vfs.NewErrorFS(mem)
					probe := newCrashProbe(efs)
					efs.Inject(vfs.Rule{After: i, Err: kind.err, PartialBytes: kind.partial})
					name := fmt.Sprintf("%s of operation %d (%v %s)", kind.name, i, op.op, op.path)
					l, err := open(probe)
					if err == nil {
						// The fault was shrugged off (a best-effort write).
						efs.Clear()
						require(t, string(readAll(t, l, 0)) == string(want), "%s: Open succeeded with the wrong data", name)
						noErr(t, l.Close())
					}
					require(t, probe.openHandles.Load() == 0, "%s: Open left %d handles open (open error: %v)", name, probe.openHandles.Load(), err)
					l, err = open(mem)
					noErr(t, err)
					require(t, string(readAll(t, l, 0)) == string(want), "%s: the next Open lost data", name)
					noErr(t, l.Close())
				}
			}
		})
	}
}

// faultOpenFixture builds a log directory (fully synced, so CrashClone
// copies it exactly) that needs the named kind of recovery, and the options
// to open it with.
func faultOpenFixture(t *testing.T, variant string) (*vfs.MemFS, Options) {
	t.Helper()
	fl := openFaultLog(t, smallConfig())
	fl.appendAcked(t, 20, "fixture")
	end, mid := fl.LogEndOffset(), fl.LogEndOffset()/2
	activeBase := fl.active().baseOffset
	noErr(t, fl.Close())
	opts := Options{Config: fl.cfg, Clock: fl.clock, Logger: quietLogger}
	switch variant {
	case "torn tail":
		f, err := fl.mem.OpenReadWrite(faultDir + "/" + segmentFileName(activeBase, logSuffix))
		noErr(t, err)
		size, err := f.Size()
		noErr(t, err)
		torn := testBatch(t, "torn", 2, 100, 1)
		_, err = f.WriteAt(torn[:len(torn)/2], size)
		noErr(t, err)
		noErr(t, f.Sync())
		noErr(t, f.Close())
	case "recovery point":
		opts.RecoveryPoint = mid
	case "lost time index":
		noErr(t, fl.mem.Remove(faultDir+"/"+segmentFileName(0, timeIndexSuffix)))
		noErr(t, fl.mem.SyncDir(faultDir))
		opts.RecoveryPoint = end
	case "clean shutdown":
		opts.RecoveryPoint, opts.CleanShutdown = end, true
	}
	return fl.mem, opts
}

// errWriteBug is what a bug in the write path panics with in
// TestLogFaultPanicInWriteFailsTheLog.
var errWriteBug = errors.New("a bug in the write path")

// TestLogFaultPanicInWriteFailsTheLog: a panic inside a write round (a
// bug, not an I/O error) must not leave the log's writer role taken, or
// every later append would wait for ever, each holding its partition's
// gate. The append gets the failure, and the log fails as a failed write
// fails it: sticky, nothing more acknowledged, what was acknowledged
// still readable and recovered.
func TestLogFaultPanicInWriteFailsTheLog(t *testing.T) {
	fl := openFaultLog(t, smallConfig())
	fl.appendAcked(t, 5, "acked")
	rp := fl.RecoveryPoint()
	var fired atomic.Bool
	fl.efs.Inject(vfs.Rule{Op: vfs.OpWrite, Match: func(string) bool {
		if fired.CompareAndSwap(false, true) {
			panic(errWriteBug)
		}
		return false
	}})
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("the append panicked: %v", r)
			}
		}()
		_, err := fl.append(testBatch(t, "lost", 2, 150, 1_700_000_000_000))
		done <- err
	}()
	err := resultOf(t, done, "the append whose write panicked")
	require(t, errors.Is(err, ErrStorage) && errors.Is(err, errWriteBug), "append whose write panicked: %v, want ErrStorage wrapping the panic", err)
	checkFailed(t, fl, errWriteBug)
	checkReopen(t, fl, crashRand(7, 7), rp)
}
