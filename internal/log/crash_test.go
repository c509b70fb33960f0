package log

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// Crash tests: random appends on the crash-simulating MemFS, a crash at a
// moment a seeded RNG picks (often in the middle of a write round, a roll or
// a clean shutdown), then recovery checked against what the appenders were
// told:
//
//   - every append acknowledged under FlushAlways, every offset below a
//     RecoveryPoint() read before the crash and every offset covered by a
//     completed Flush() is there, byte for byte;
//   - offsets are dense from the log start to the log end offset;
//   - nothing else is: the log is a prefix of what was appended, every batch
//     byte-identical to what an appender sent (with its offsets assigned);
//   - appends after recovery continue at the log end offset.
//
// A failure names its seed; replay one with
//
//	SLUICE_CRASH_SEED=<seed> go test -race -run '^TestLogCrashRandomAppends$' ./internal/log/
//
// Runs with one appender are deterministic given the seed; with concurrent
// appenders the seed fixes the workload and the crash point, the goroutine
// schedule stays the scheduler's. SLUICE_LONG_TESTS=1 runs many more seeds.
const (
	crashSeedEnv = "SLUICE_CRASH_SEED"
	crashLongEnv = "SLUICE_LONG_TESTS"
)

// crashSeeds returns the seeds a randomized test runs: the one in
// SLUICE_CRASH_SEED, or fresh random ones (short of them in CI, long with
// SLUICE_LONG_TESTS=1), so that every CI run explores new histories.
func crashSeeds(t *testing.T, short, long int) []uint64 {
	t.Helper()
	if s := os.Getenv(crashSeedEnv); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		noErr(t, err)
		return []uint64{seed}
	}
	n := short
	if os.Getenv(crashLongEnv) == "1" {
		n = long
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = rand.Uint64() >> 1 // positive when printed as int64 too
	}
	return seeds
}

// crashRun runs fn once per seed as a subtest named after the seed, and on
// failure prints the command that replays it.
func crashRun(t *testing.T, seeds []uint64, fn func(t *testing.T, seed uint64)) {
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			defer func() {
				if t.Failed() {
					top, _, _ := strings.Cut(t.Name(), "/")
					t.Logf("replay: %s=%d go test -race -run '^%s$' ./internal/log/", crashSeedEnv, seed, top)
				}
			}()
			fn(t, seed)
		})
	}
}

// crashRand derives an independent stream from a seed, so that the workload,
// each appender and each crash draw from their own generator.
func crashRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream^0x5eed_c0ffee))
}

// crashProbeFS wraps an FS to watch what a log does with it: it counts the
// handles open (a descriptor leak shows as a count above zero once the log is
// closed) and calls a hook before each operation, which may fail the
// operation, hold it, or take a crash snapshot at that exact moment.
type crashProbeFS struct {
	inner       vfs.FS
	hook        atomic.Pointer[crashHook]
	openHandles atomic.Int64
}

// crashHook sees every operation before it runs; an error fails it. Hooks run
// on whatever goroutine does the I/O, possibly with the log's lock held, so
// they must not call into the log.
type crashHook func(op vfs.Op, path string) error

func newCrashProbe(inner vfs.FS) *crashProbeFS { return &crashProbeFS{inner: inner} }

func (p *crashProbeFS) setHook(h crashHook) {
	if h == nil {
		p.hook.Store(nil)
		return
	}
	p.hook.Store(&h)
}

func (p *crashProbeFS) before(op vfs.Op, path string) error {
	if h := p.hook.Load(); h != nil {
		return (*h)(op, path)
	}
	return nil
}

func (p *crashProbeFS) opened(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	p.openHandles.Add(1)
	return &crashProbeFile{probe: p, inner: f}, nil
}

func (p *crashProbeFS) Create(name string) (vfs.File, error) {
	if err := p.before(vfs.OpCreate, name); err != nil {
		return nil, err
	}
	return p.opened(p.inner.Create(name))
}

func (p *crashProbeFS) Open(name string) (vfs.File, error) {
	if err := p.before(vfs.OpOpen, name); err != nil {
		return nil, err
	}
	return p.opened(p.inner.Open(name))
}

func (p *crashProbeFS) OpenReadWrite(name string) (vfs.File, error) {
	if err := p.before(vfs.OpOpen, name); err != nil {
		return nil, err
	}
	return p.opened(p.inner.OpenReadWrite(name))
}

func (p *crashProbeFS) Remove(name string) error {
	if err := p.before(vfs.OpRemove, name); err != nil {
		return err
	}
	return p.inner.Remove(name)
}

func (p *crashProbeFS) RemoveAll(name string) error {
	if err := p.before(vfs.OpRemove, name); err != nil {
		return err
	}
	return p.inner.RemoveAll(name)
}

func (p *crashProbeFS) Rename(oldname, newname string) error {
	if err := p.before(vfs.OpRename, newname); err != nil {
		return err
	}
	return p.inner.Rename(oldname, newname)
}

func (p *crashProbeFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := p.before(vfs.OpMkdir, dir); err != nil {
		return err
	}
	return p.inner.MkdirAll(dir, perm)
}

func (p *crashProbeFS) List(dir string) ([]string, error) {
	if err := p.before(vfs.OpList, dir); err != nil {
		return nil, err
	}
	return p.inner.List(dir)
}

func (p *crashProbeFS) Stat(name string) (os.FileInfo, error) {
	if err := p.before(vfs.OpStat, name); err != nil {
		return nil, err
	}
	return p.inner.Stat(name)
}

func (p *crashProbeFS) SyncDir(dir string) error {
	if err := p.before(vfs.OpSyncDir, dir); err != nil {
		return err
	}
	return p.inner.SyncDir(dir)
}

func (p *crashProbeFS) OpenFileSystemSyncer(dir string) (vfs.FileSystemSyncer, error) {
	if err := p.before(vfs.OpOpen, dir); err != nil {
		return nil, err
	}
	inner, err := p.inner.OpenFileSystemSyncer(dir)
	if err != nil {
		return nil, err
	}
	p.openHandles.Add(1)
	return &crashProbeSyncer{probe: p, inner: inner, dir: dir}, nil
}

// crashProbeSyncer lets a hook fail, hold or crash at a shared sync, as at
// any other operation.
type crashProbeSyncer struct {
	probe  *crashProbeFS
	inner  vfs.FileSystemSyncer
	dir    string
	closed atomic.Bool
}

func (s *crashProbeSyncer) SyncFS() error {
	if err := s.probe.before(vfs.OpSyncFS, s.dir); err != nil {
		return err
	}
	return s.inner.SyncFS()
}

func (s *crashProbeSyncer) Close() error {
	if s.closed.CompareAndSwap(false, true) {
		s.probe.openHandles.Add(-1)
	}
	return s.inner.Close()
}

type crashProbeFile struct {
	probe  *crashProbeFS
	inner  vfs.File
	closed atomic.Bool
}

func (f *crashProbeFile) Name() string { return f.inner.Name() }

func (f *crashProbeFile) Close() error {
	if f.closed.CompareAndSwap(false, true) {
		f.probe.openHandles.Add(-1)
	}
	return f.inner.Close()
}

func (f *crashProbeFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.probe.before(vfs.OpRead, f.Name()); err != nil {
		return 0, err
	}
	return f.inner.ReadAt(p, off)
}

func (f *crashProbeFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.probe.before(vfs.OpWrite, f.Name()); err != nil {
		return 0, err
	}
	return f.inner.WriteAt(p, off)
}

func (f *crashProbeFile) WritevAt(bufs [][]byte, off int64) (int64, error) {
	if err := f.probe.before(vfs.OpWrite, f.Name()); err != nil {
		return 0, err
	}
	return f.inner.WritevAt(bufs, off)
}

func (f *crashProbeFile) Sync() error {
	if err := f.probe.before(vfs.OpSync, f.Name()); err != nil {
		return err
	}
	return f.inner.Sync()
}

func (f *crashProbeFile) Truncate(size int64) error {
	if err := f.probe.before(vfs.OpTruncate, f.Name()); err != nil {
		return err
	}
	return f.inner.Truncate(size)
}

func (f *crashProbeFile) Size() (int64, error) {
	if err := f.probe.before(vfs.OpStat, f.Name()); err != nil {
		return 0, err
	}
	return f.inner.Size()
}

// crashMutates tells the operations that change what a crash can leave
// behind; crash points are counted in these.
func crashMutates(op vfs.Op) bool {
	switch op {
	case vfs.OpCreate, vfs.OpWrite, vfs.OpSync, vfs.OpSyncDir, vfs.OpSyncFS, vfs.OpTruncate, vfs.OpRemove, vfs.OpRename:
		return true
	}
	return false
}

// crashAtOp arms the probe to call crash just before the k-th mutating
// operation from now (k >= 1), once. The caller calls crash again at the end
// in case the workload never got that far; the second call does nothing.
func crashAtOp(probe *crashProbeFS, k int64, crash func()) {
	var ops atomic.Int64
	probe.setHook(func(op vfs.Op, _ string) error {
		if crashMutates(op) && ops.Add(1) == k {
			crash()
		}
		return nil
	})
}

// crashConfig draws a log configuration. Segments and indexes are small so
// that rolls (on size, on age and on a full index) happen often; index files
// stay small because MemFS materializes their preallocated zeros.
func crashConfig(rng *rand.Rand) Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = []int64{1024, 2048, 8192, 1 << 20}[rng.IntN(4)]
	cfg.IndexIntervalBytes = []int64{0, 100, 1000, 4096}[rng.IntN(4)]
	cfg.SegmentIndexBytes = []int64{4 * offsetIndexEntrySize * timeIndexEntrySize, 768, 64 << 10}[rng.IntN(3)]
	cfg.FlushPolicy = FlushPolicy(rng.IntN(3))
	cfg.FlushMs = []int64{1, 20, 1000}[rng.IntN(3)]
	if rng.IntN(4) == 0 {
		cfg.SegmentMs = 50
	}
	cfg.RetentionMs = -1
	return cfg
}

// crashPayload builds what one Append sends: one to three batches of random
// records, sometimes compressed, never larger than a segment.
func crashPayload(rng *rand.Rand, cfg Config, nowMs int64, tag string) []byte {
	maxValue := int(min(cfg.SegmentBytes/64, 300))
	for {
		var buf []byte
		for b := 0; b < 1+rng.IntN(3); b++ {
			recs := make([]record.Record, 1+rng.IntN(6))
			for i := range recs {
				value := make([]byte, rng.IntN(maxValue+1))
				for j := range value {
					value[j] = byte(rng.Uint32())
				}
				copy(value, fmt.Sprintf("%s/%d/%d", tag, b, i))
				recs[i] = record.Record{Value: value, TimestampDelta: int64(rng.IntN(5))}
				if rng.IntN(3) == 0 {
					recs[i].Key = []byte(tag)
				}
			}
			codec := record.CodecNone
			if rng.IntN(5) == 0 {
				codec = []record.Codec{record.CodecGzip, record.CodecSnappy, record.CodecLZ4, record.CodecZstd}[rng.IntN(4)]
			}
			var err error
			buf, err = record.AppendBatch(buf, record.BatchOptions{ProducerID: -1, FirstTimestamp: nowMs + int64(rng.IntN(100)), Codec: codec}, recs)
			if err != nil {
				panic(err) // the inputs are ours: a failure is a bug in the test
			}
		}
		if int64(len(buf)) <= cfg.SegmentBytes {
			return buf
		}
	}
}

// crashAppend is one Append that got offsets: its bytes as the log assigned
// them (Append writes offsets into the caller's buffer).
type crashAppend struct {
	buf         []byte
	first, last int64
}

// crashHistory is what the appenders of one run were told, from which a
// crash snapshot computes what must survive.
type crashHistory struct {
	mu                sync.Mutex
	appends           []crashAppend
	ackedEnd          int64 // offset after the last acknowledged append
	flushedEnd        int64 // offsets below were covered by a completed Flush
	recoveryPointSeen int64 // largest RecoveryPoint() an appender read
	errs              []error
}

// durableLocked is the offset below which everything must survive a crash
// now, by the log's contract under policy.
func (h *crashHistory) durableLocked(policy FlushPolicy) int64 {
	d := max(h.flushedEnd, h.recoveryPointSeen)
	if policy == FlushAlways {
		d = max(d, h.ackedEnd)
	}
	return d
}

func (h *crashHistory) failed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errs = append(h.errs, err)
}

// expected checks the appends are dense from start and returns their bytes
// in offset order.
func (h *crashHistory) expected(t *testing.T, start int64) []byte {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	sort.Slice(h.appends, func(i, j int) bool { return h.appends[i].first < h.appends[j].first })
	var out []byte
	next := start
	for _, a := range h.appends {
		require(t, a.first == next, "append got offsets %d..%d, expected to start at %d", a.first, a.last, next)
		next = a.last + 1
		out = append(out, a.buf...)
	}
	return out
}

// crashAppender runs one appender: n appends of random payloads, now and
// then a Flush (recording what it covered) or a clock step. Errors are
// collected: they must not happen on a log no one crashes under.
func crashAppender(l *Log, h *crashHistory, rng *rand.Rand, cfg Config, clk *clock.Manual, n int, tag string) {
	for i := 0; i < n; i++ {
		buf := crashPayload(rng, cfg, clk.Now().UnixMilli(), fmt.Sprintf("%s-%d", tag, i))
		opts := AppendOptions{LeaderEpoch: -1}
		if rng.IntN(4) == 0 {
			opts.LeaderEpoch = int32(rng.IntN(10))
		}
		opts.LogAppendTime = rng.IntN(8) == 0
		info, err := l.Append(buf, opts)
		if err != nil {
			h.failed(fmt.Errorf("append %s-%d: %w", tag, i, err))
			return
		}
		rp := l.RecoveryPoint()
		h.mu.Lock()
		h.appends = append(h.appends, crashAppend{buf: buf, first: info.FirstOffset, last: info.LastOffset})
		h.ackedEnd = max(h.ackedEnd, info.LastOffset+1)
		h.recoveryPointSeen = max(h.recoveryPointSeen, rp)
		covered := h.ackedEnd
		h.mu.Unlock()
		switch rng.IntN(10) {
		case 0:
			if err := l.Flush(); err != nil {
				h.failed(fmt.Errorf("flush: %w", err))
				return
			}
			h.mu.Lock()
			h.flushedEnd = max(h.flushedEnd, covered)
			h.mu.Unlock()
		case 1:
			clk.Advance(time.Duration(rng.IntN(30)) * time.Millisecond)
		}
	}
}

// checkRecovered checks a log reopened after a crash: whole valid batches,
// dense offsets from 0 to the log end offset, a byte-for-byte prefix of
// universe (everything that was ever appended, in offset order) and at least
// up to required. It returns the recovered bytes.
func checkRecovered(t *testing.T, l *Log, universe []byte, required int64) []byte {
	t.Helper()
	require(t, l.LogStartOffset() == 0, "log start offset %d after recovery", l.LogStartOffset())
	got := readAll(t, l, 0)
	next := int64(0)
	for rest := got; len(rest) > 0; {
		batch, after, h, err := record.NextBatch(rest)
		noErr(t, err)
		_, err = record.ValidateBatch(batch)
		require(t, err == nil, "recovered batch at offset %d is invalid: %v", h.BaseOffset, err)
		require(t, h.BaseOffset == next, "offsets not dense: batch at %d after offset %d", h.BaseOffset, next)
		next, rest = h.NextOffset(), after
	}
	require(t, next == l.LogEndOffset(), "batches end at %d, log end offset %d", next, l.LogEndOffset())
	if !bytes.HasPrefix(universe, got) {
		pos := 0
		for pos < len(got) && pos < len(universe) && got[pos] == universe[pos] {
			pos++
		}
		t.Fatalf("recovered log is not a prefix of what was appended: differs at byte %d of %d (appended %d bytes)", pos, len(got), len(universe))
	}
	require(t, next >= required, "lost acknowledged data: recovered up to offset %d, %d must survive", next, required)
	require(t, l.RecoveryPoint() == next, "recovery point %d after recovery, log end %d", l.RecoveryPoint(), next)
	return got
}

// checkAppendAfterRecovery appends one batch to a recovered log and checks
// it lands at the log end offset and reads back.
func checkAppendAfterRecovery(t *testing.T, l *Log, recovered []byte) {
	t.Helper()
	end := l.LogEndOffset()
	b := testBatch(t, "after-recovery", 2, 10, 1_700_000_000_000)
	info, err := l.Append(b, AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	require(t, info.FirstOffset == end, "append after recovery got offset %d, log end offset was %d", info.FirstOffset, end)
	require(t, bytes.Equal(readAll(t, l, 0), append(append([]byte(nil), recovered...), b...)), "append after recovery does not read back")
}

// closeAndCheckHandles closes a log and checks it left no file open.
func closeAndCheckHandles(t *testing.T, l *Log, probe *crashProbeFS) {
	t.Helper()
	noErr(t, l.Close())
	require(t, l.files.OpenFiles() == 0, "file cache still counts %d open files after Close", l.files.OpenFiles())
	require(t, probe.openHandles.Load() == 0, "%d file handles left open after Close", probe.openHandles.Load())
}

// crashSnapshot is the state a crash left, with what must have survived it.
type crashSnapshot struct {
	fs            *vfs.MemFS
	required      int64
	recoveryPoint int64 // a RecoveryPoint() read before the crash
}

// TestLogCrashRandomAppends runs generations of random appends; each ends in
// a crash, and the next generation starts from what recovery made of it.
// A crash is either a CrashClone just before a random file operation (with
// appenders in flight: mid-round, mid-roll) or, with the log idle, a Crash
// of the file system in place.
func TestLogCrashRandomAppends(t *testing.T) {
	crashRun(t, crashSeeds(t, 60, 1000), runCrashGenerations)
}

func runCrashGenerations(t *testing.T, seed uint64) {
	rng := crashRand(seed, 0)
	cfg := crashConfig(rng)
	appenders := 1
	if rng.IntN(2) == 0 {
		appenders = 2 + rng.IntN(4)
	}
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	mem := vfs.NewMem()
	const dir = "/data/orders-0"
	t.Logf("config %+v, %d appenders", cfg, appenders)

	probe := newCrashProbe(mem)
	l, err := Open(probe, dir, Options{Config: cfg, Clock: clk, Logger: quietLogger})
	noErr(t, err)
	var recovered []byte
	var recoveredEnd int64
	for gen := 0; gen < 3; gen++ {
		perAppender := (20 + rng.IntN(60)) / appenders
		inPlace := rng.IntN(3) == 0
		h := &crashHistory{ackedEnd: recoveredEnd, flushedEnd: recoveredEnd, recoveryPointSeen: recoveredEnd}
		var snap crashSnapshot
		var once sync.Once
		crashRng := crashRand(seed, uint64(1000+gen))
		crash := func() {
			once.Do(func() {
				h.mu.Lock()
				snap.required, snap.recoveryPoint = h.durableLocked(cfg.FlushPolicy), h.recoveryPointSeen
				h.mu.Unlock()
				if inPlace {
					mem.Crash(crashRng)
					snap.fs = mem
				} else {
					snap.fs = mem.CrashClone(crashRng)
				}
			})
		}
		if !inPlace {
			crashAtOp(probe, 1+rng.Int64N(int64(3*perAppender*appenders+20)), crash)
		}
		var wg sync.WaitGroup
		for a := 0; a < appenders; a++ {
			wg.Add(1)
			arng := crashRand(seed, uint64(gen*100+a+1))
			go func() {
				defer wg.Done()
				crashAppender(l, h, arng, cfg, clk, perAppender, fmt.Sprintf("g%da%d", gen, a))
			}()
		}
		wg.Wait()
		probe.setHook(nil)
		require(t, len(h.errs) == 0, "generation %d: appends failed without a crash: %v", gen, h.errs)
		universe := append(append([]byte(nil), recovered...), h.expected(t, recoveredEnd)...)
		require(t, bytes.Equal(readAll(t, l, 0), universe), "generation %d: the live log does not hold what was appended", gen)
		crash()
		if !inPlace {
			// The live log was untouched by the clone: it closes cleanly.
			closeAndCheckHandles(t, l, probe)
		}

		// Recover twice from the same crash: from scratch, and from the
		// recovery point read before the crash. Opening changes the files,
		// so the second one gets an exact copy (a clone of a clone has
		// nothing unsynced left to lose).
		copyFS := snap.fs.CrashClone(crashRng)
		probe = newCrashProbe(snap.fs)
		l, err = Open(probe, dir, Options{Config: cfg, Clock: clk, Logger: quietLogger})
		noErr(t, err)
		recovered = checkRecovered(t, l, universe, snap.required)
		recoveredEnd = l.LogEndOffset()

		copyProbe := newCrashProbe(copyFS)
		fromPoint, err := Open(copyProbe, dir, Options{Config: cfg, Clock: clk, Logger: quietLogger, RecoveryPoint: snap.recoveryPoint})
		noErr(t, err)
		require(t, bytes.Equal(readAll(t, fromPoint, 0), recovered), "generation %d: recovery from point %d differs from full recovery", gen, snap.recoveryPoint)
		checkAppendAfterRecovery(t, fromPoint, recovered)
		closeAndCheckHandles(t, fromPoint, copyProbe)
		mem = snap.fs
	}
	checkAppendAfterRecovery(t, l, recovered)
	closeAndCheckHandles(t, l, probe)
}

// TestLogCrashManager drives a Manager through generations that end either
// in a clean shutdown with a crash at a random point of Close (or after it),
// or in a crash at a random point of the workload without Close. Recovery
// must keep every acknowledged batch, and a clean-shutdown marker that
// survives must mean everything survived. Directories are strict here: a
// partition directory survives only if the manager synced its parent.
func TestLogCrashManager(t *testing.T) {
	crashRun(t, crashSeeds(t, 20, 300), runManagerCrash)
}

func runManagerCrash(t *testing.T, seed uint64) {
	rng := crashRand(seed, 0)
	mem := vfs.NewMem()
	noErr(t, mem.MkdirAll("/data", 0o755))
	noErr(t, mem.SyncDir("/"))
	mem.SetStrictMkdir(true)
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	tps := []TopicPartition{{"orders", 0}, {"orders", 1}, {"click-stream", 0}}
	cfgs := map[TopicPartition]Config{}
	for _, tp := range tps {
		cfgs[tp] = crashConfig(rng)
	}
	universe := map[TopicPartition][]byte{}
	required := map[TopicPartition]int64{}
	marker := "/data/" + cleanShutdownFile
	for gen := 0; gen < 4; gen++ {
		_, statErr := mem.Stat(marker)
		clean := statErr == nil
		probe := newCrashProbe(mem)
		m, err := OpenManager(ManagerOptions{FS: probe, Dir: "/data", Config: smallConfig(), Clock: clk, Logger: quietLogger, CheckpointIntervalMs: 50})
		noErr(t, err)
		_, statErr = mem.Stat(marker)
		require(t, statErr != nil, "generation %d: clean-shutdown marker still there after open", gen)
		checkManagerRecovered(t, m, mem, tps, universe, required, clean)

		hist := managerHistories(m, tps)
		var snap *vfs.MemFS
		crashRng := crashRand(seed, uint64(1000+gen))
		// The hook runs on this goroutine (the workload is sequential), so
		// it may read the histories without locks.
		crash := func() {
			if snap != nil {
				return
			}
			for _, tp := range tps {
				required[tp] = hist[tp].durableLocked(cfgs[tp].FlushPolicy)
			}
			snap = mem.CrashClone(crashRng)
		}
		n := 20 + rng.IntN(60)
		closeFirst := rng.IntN(2) == 0
		if !closeFirst {
			crashAtOp(probe, 1+rng.Int64N(int64(3*n)), crash)
		}
		managerWorkload(t, m, rng, clk, tps, cfgs, hist, n)
		for _, tp := range tps {
			if l, ok := m.Log(tp); ok {
				universe[tp] = readAll(t, l, 0)
			}
		}
		if closeFirst && rng.IntN(3) > 0 {
			// Else the crash comes after a completed Close, which must
			// leave a marker that the next open trusts.
			crashAtOp(probe, 1+rng.Int64N(60), crash)
		}
		noErr(t, m.Close())
		probe.setHook(nil)
		closedBeforeCrash := snap == nil
		crash()
		require(t, probe.openHandles.Load() == 0, "generation %d: %d file handles open after Manager.Close", gen, probe.openHandles.Load())
		if closedBeforeCrash {
			_, err := snap.Stat(marker)
			require(t, err == nil, "generation %d: Close returned but its clean-shutdown marker did not survive", gen)
		}
		mem = snap
	}
}

// managerWorkload appends to the manager's partitions (creating them on
// first use), flushes, and runs maintenance as the clock moves, recording
// per partition what each log acknowledged.
func managerWorkload(t *testing.T, m *Manager, rng *rand.Rand, clk *clock.Manual, tps []TopicPartition, cfgs map[TopicPartition]Config, hist map[TopicPartition]*crashHistory, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		tp := tps[rng.IntN(len(tps))]
		l, err := m.GetOrCreate(tp, cfgs[tp])
		noErr(t, err)
		h := hist[tp]
		switch rng.IntN(8) {
		case 0:
			clk.Advance(time.Duration(rng.IntN(40)) * time.Millisecond)
			noErr(t, m.Maintain(clk.Now().UnixMilli()))
		case 1:
			covered := l.LogEndOffset()
			noErr(t, l.Flush())
			h.flushedEnd = max(h.flushedEnd, covered)
		default:
			info, err := l.Append(crashPayload(rng, cfgs[tp], clk.Now().UnixMilli(), fmt.Sprintf("%s-%d", tp, i)), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
			h.ackedEnd = max(h.ackedEnd, info.LastOffset+1)
		}
		for _, tp := range tps {
			if l, ok := m.Log(tp); ok {
				hist[tp].recoveryPointSeen = max(hist[tp].recoveryPointSeen, l.RecoveryPoint())
			}
		}
	}
}

// managerHistories starts a history per partition from what the reopened
// logs hold: recovery made all of it durable.
func managerHistories(m *Manager, tps []TopicPartition) map[TopicPartition]*crashHistory {
	hist := map[TopicPartition]*crashHistory{}
	for _, tp := range tps {
		hist[tp] = &crashHistory{}
		if l, ok := m.Log(tp); ok {
			end := l.LogEndOffset()
			hist[tp] = &crashHistory{ackedEnd: end, flushedEnd: end, recoveryPointSeen: l.RecoveryPoint()}
		}
	}
	return hist
}

// checkManagerRecovered checks every partition of a reopened manager
// against what was appended before the crash. After a clean shutdown (its
// marker survived) everything must be there, not just what was required.
func checkManagerRecovered(t *testing.T, m *Manager, mem *vfs.MemFS, tps []TopicPartition, universe map[TopicPartition][]byte, required map[TopicPartition]int64, clean bool) {
	t.Helper()
	points, err := readCheckpoint(mem, "/data/"+recoveryPointCheckpointFile)
	noErr(t, err)
	for _, tp := range tps {
		l, ok := m.Log(tp)
		if !ok {
			require(t, required[tp] == 0 && !clean, "partition %s lost: %d must survive (clean %v)", tp, required[tp], clean)
			continue
		}
		got := checkRecovered(t, l, universe[tp], required[tp])
		require(t, !clean || bytes.Equal(got, universe[tp]), "partition %s: a clean shutdown lost data: %d of %d bytes", tp, len(got), len(universe[tp]))
		require(t, points[tp] == l.LogEndOffset(), "partition %s: checkpoint after open says %d, log end %d", tp, points[tp], l.LogEndOffset())
	}
}
