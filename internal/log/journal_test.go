package log

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

const journalTestDir = "/data/journal"

// journalTest holds a journal under test and what its Checkpointed saw.
type journalTest struct {
	t      *testing.T
	fs     vfs.FS
	syncer vfs.FileSystemSyncer
	j      *Journal

	mu          sync.Mutex
	checkpoints []map[string]int64
	// checkpointed, if set, answers Checkpointed after the ends are noted.
	checkpointed func(ends map[string]int64) error
}

func newJournalTest(t *testing.T, fsys vfs.FS, fileBytes int64) *journalTest {
	t.Helper()
	syncer, err := fsys.OpenFileSystemSyncer("/")
	noErr(t, err)
	jt := &journalTest{t: t, fs: fsys, syncer: syncer}
	t.Cleanup(func() { _ = syncer.Close() })
	jt.open(fileBytes)
	return jt
}

func (jt *journalTest) open(fileBytes int64) {
	jt.t.Helper()
	j, err := OpenJournal(JournalOptions{FS: jt.fs, Dir: journalTestDir, FileBytes: fileBytes, Syncer: jt.syncer,
		Logger: quietLogger, Checkpointed: jt.onCheckpointed})
	noErr(jt.t, err)
	jt.j = j
}

func (jt *journalTest) onCheckpointed(ends map[string]int64, _ uint64) error {
	jt.mu.Lock()
	answer := jt.checkpointed
	jt.mu.Unlock()
	if answer != nil {
		if err := answer(ends); err != nil {
			return err
		}
	}
	jt.mu.Lock()
	defer jt.mu.Unlock()
	jt.checkpoints = append(jt.checkpoints, ends)
	return nil
}

func (jt *journalTest) checkpointCount() int {
	jt.mu.Lock()
	defer jt.mu.Unlock()
	return len(jt.checkpoints)
}

// reopen closes the journal and opens it again on the same files.
func (jt *journalTest) reopen(fileBytes int64) {
	jt.t.Helper()
	noErr(jt.t, jt.j.Close())
	jt.open(fileBytes)
}

// journalReplayed is one record Replay passed.
type journalReplayed struct {
	name    string
	base    int64
	batches string
	limit   int64
}

func (jt *journalTest) replay() []journalReplayed {
	jt.t.Helper()
	var got []journalReplayed
	noErr(jt.t, jt.j.Replay(func(name string, base int64, batches []byte, limit int64) error {
		got = append(got, journalReplayed{name: name, base: base, batches: string(batches), limit: limit})
		return nil
	}))
	return got
}

// appendWait journals one record and waits for it.
func (jt *journalTest) appendWait(name string, base, end int64, payload string) error {
	jt.t.Helper()
	ticket, ok := jt.j.Append(name, base, end, [][]byte{[]byte(payload)})
	require(jt.t, ok, "append %s@%d refused", name, base)
	return jt.j.Wait(name, ticket)
}

// waitCheckpointIdle waits for a running checkpoint to end.
func waitCheckpointIdle(j *Journal) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.checkpointing {
		j.cond.Wait()
	}
}

// journalPayload is a payload of exactly size bytes naming its record.
func journalPayload(name string, base int64, size int) string {
	s := fmt.Sprintf("%s@%d;", name, base)
	return s + strings.Repeat("x", size-len(s))
}

func TestJournalRoundTrip(t *testing.T) {
	jt := newJournalTest(t, vfs.NewMem(), 64<<10)
	require(t, len(jt.replay()) == 0, "a new journal replays records")
	noErr(t, jt.j.Reset())
	var want []journalReplayed
	next := map[string]int64{}
	for i := 0; i < 30; i++ {
		name := fmt.Sprintf("orders-%d", i%3)
		base := next[name]
		payload := journalPayload(name, base, 20+i*7)
		noErr(t, jt.appendWait(name, base, base+3, payload))
		next[name] = base + 3
		want = append(want, journalReplayed{name: name, base: base, batches: payload, limit: math.MaxInt64})
	}
	jt.reopen(64 << 10)
	got := jt.replay()
	require(t, fmt.Sprint(got) == fmt.Sprint(want), "replayed\n%v\nwant\n%v", got, want)

	// Reset forgets them; what follows replays alone.
	noErr(t, jt.j.Reset())
	noErr(t, jt.appendWait("orders-0", 30, 31, "after"))
	jt.reopen(64 << 10)
	got = jt.replay()
	require(t, len(got) == 1 && got[0].batches == "after", "after Reset, replayed %v", got)
	noErr(t, jt.j.Close())
}

// A new journal used without Reset writes its header with its first
// records.
func TestJournalFirstWriteWithoutReset(t *testing.T) {
	jt := newJournalTest(t, vfs.NewMem(), 4096)
	noErr(t, jt.appendWait("a-0", 0, 1, "one"))
	noErr(t, jt.appendWait("a-0", 1, 2, "two"))
	jt.reopen(4096)
	got := jt.replay()
	require(t, len(got) == 2 && got[1].batches == "two", "replayed %v", got)
	// The scan at open found the end: a record appended now follows them.
	noErr(t, jt.appendWait("a-0", 2, 3, "three"))
	jt.reopen(4096)
	require(t, len(jt.replay()) == 3, "replayed %v", jt.replay())
	noErr(t, jt.j.Close())
}

// Concurrent waiters share syncs: the first round's sync is held until
// every record is queued, so the rest go out in one more round.
func TestJournalGroupCommit(t *testing.T) {
	probe := newCrashProbe(vfs.NewMem())
	jt := newJournalTest(t, probe, 1<<20)
	noErr(t, jt.j.Reset())
	const appenders = 40
	var appended sync.WaitGroup
	appended.Add(appenders)
	var syncs atomic.Int64
	probe.setHook(func(op vfs.Op, path string) error {
		if op == vfs.OpSync && strings.HasSuffix(path, ".wal") && syncs.Add(1) == 1 {
			appended.Wait()
		}
		return nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, appenders)
	for a := 0; a < appenders; a++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("t-%d", a)
			ticket, ok := jt.j.Append(name, 0, 1, [][]byte{[]byte(name)})
			appended.Done()
			if !ok {
				errs <- fmt.Errorf("append %s refused", name)
				return
			}
			errs <- jt.j.Wait(name, ticket)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		noErr(t, err)
	}
	probe.setHook(nil)
	require(t, syncs.Load() >= 1 && syncs.Load() <= 2, "%d records took %d syncs", appenders, syncs.Load())
	jt.reopen(1 << 20)
	require(t, len(jt.replay()) == appenders, "replayed %d records", len(jt.replay()))
	noErr(t, jt.j.Close())
}

// Records of equal size fill files of known capacity: each checkpoint
// gets the ends of exactly the records of its file, files are reused, and
// replay gives every record after the last checkpoint.
func TestJournalRotationAndReuse(t *testing.T) {
	const fileBytes, payloadBytes = 512, 50
	jt := newJournalTest(t, vfs.NewMem(), fileBytes)
	noErr(t, jt.j.Reset())
	recordBytes := journalRecordOverhead + len("log-a") + payloadBytes
	perFile := (fileBytes - journalHeaderBytes) / recordBytes
	type rec struct {
		name      string
		base, end int64
	}
	var recs []rec
	for i := 0; i < 8*perFile+2; i++ {
		name := []string{"log-a", "log-b"}[i%2]
		base := int64(i / 2 * 10)
		noErr(t, jt.appendWait(name, base, base+10, journalPayload(name, base, payloadBytes)))
		waitCheckpointIdle(jt.j)
		recs = append(recs, rec{name, base, base + 10})
	}
	require(t, jt.checkpointCount() == 8, "%d checkpoints, want 8", jt.checkpointCount())
	for c, ends := range jt.checkpoints {
		want := map[string]int64{}
		for _, r := range recs[c*perFile : (c+1)*perFile] {
			want[r.name] = r.end
		}
		require(t, fmt.Sprint(ends) == fmt.Sprint(want), "checkpoint %d got ends %v, want %v", c, ends, want)
	}
	jt.reopen(fileBytes)
	got := jt.replay()
	// The file retired last still has its header: its records replay too.
	wantFrom := 7 * perFile
	require(t, len(got) == len(recs)-wantFrom, "replayed %d records, want %d", len(got), len(recs)-wantFrom)
	for k, g := range got {
		r := recs[wantFrom+k]
		require(t, g.name == r.name && g.base == r.base && g.batches == journalPayload(r.name, r.base, payloadBytes),
			"record %d replayed as %s@%d", k, g.name, g.base)
	}
	noErr(t, jt.j.Close())
}

// While the retired file is being checkpointed, records that do not fit
// get ErrJournalFull; later ones are taken again once the spare is ready.
// A fence waits for the spare instead.
func TestJournalFullWhileCheckpointing(t *testing.T) {
	jt := newJournalTest(t, vfs.NewMem(), 512)
	noErr(t, jt.j.Reset())
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	jt.checkpointed = func(map[string]int64) error {
		entered <- struct{}{}
		<-release
		return nil
	}
	var base int64
	full := false
	for i := 0; i < 40 && !full; i++ {
		err := jt.appendWait("log-a", base, base+1, journalPayload("log-a", base, 60))
		if errors.Is(err, ErrJournalFull) {
			full = true
			continue
		}
		noErr(t, err)
		base++
	}
	require(t, full, "the journal never answered ErrJournalFull")
	<-entered
	fenced := make(chan error, 1)
	go func() { fenced <- jt.fence("log-a", base) }()
	// Not sticky: Append still takes records.
	_, ok := jt.j.Append("log-a", base, base+1, [][]byte{[]byte("x")})
	require(t, ok, "append refused after ErrJournalFull")
	select {
	case err := <-fenced:
		t.Fatalf("fence returned %v while the spare was not ready", err)
	default:
	}
	close(release)
	noErr(t, <-fenced)
	waitCheckpointIdle(jt.j)
	noErr(t, jt.appendWait("log-a", base, base+1, "after"))
	noErr(t, jt.j.Close())
}

func TestJournalFences(t *testing.T) {
	jt := newJournalTest(t, vfs.NewMem(), 64<<10)
	noErr(t, jt.j.Reset())
	noErr(t, jt.appendWait("a", 0, 10, "a0-10"))
	noErr(t, jt.appendWait("a", 6, 9, "a6-9 dropped whole"))
	noErr(t, jt.appendWait("b", 0, 4, "b0-4"))
	noErr(t, jt.appendWait("c", 0, 4, "c0-4 dropped"))
	noErr(t, jt.fence("a", 5))
	noErr(t, jt.fence("c", -1))
	noErr(t, jt.appendWait("a", 5, 8, "a5-8"))
	noErr(t, jt.appendWait("c", 0, 2, "c0-2"))
	noErr(t, jt.fence("a", 7))
	noErr(t, jt.appendWait("a", 7, 9, "a7-9"))
	noErr(t, jt.fence("b", 9)) // past b's records: cuts nothing of them
	// A later fence lower than an earlier one governs.
	noErr(t, jt.appendWait("d", 0, 10, "d0-10"))
	noErr(t, jt.fence("d", 8))
	noErr(t, jt.appendWait("d", 8, 9, "d8-9 dropped whole"))
	noErr(t, jt.fence("d", 3))
	noErr(t, jt.appendWait("d", 3, 4, "d3-4"))
	jt.reopen(64 << 10)
	got := jt.replay()
	want := []journalReplayed{
		{"a", 0, "a0-10", 5},
		{"b", 0, "b0-4", 9},
		{"a", 5, "a5-8", 7},
		{"c", 0, "c0-2", math.MaxInt64},
		{"a", 7, "a7-9", math.MaxInt64},
		{"d", 0, "d0-10", 3},
		{"d", 3, "d3-4", math.MaxInt64},
	}
	require(t, fmt.Sprint(got) == fmt.Sprint(want), "replayed\n%v\nwant\n%v", got, want)
	noErr(t, jt.j.Close())
}

// A record torn or corrupted ends the scan: Replay returns what precedes
// it and nothing after.
func TestJournalTornTail(t *testing.T) {
	mem := vfs.NewMem()
	jt := newJournalTest(t, mem, 4096)
	noErr(t, jt.j.Reset())
	for i := int64(0); i < 4; i++ {
		noErr(t, jt.appendWait("a", i, i+1, journalPayload("a", i, 40)))
	}
	noErr(t, jt.j.Close())
	f, err := mem.OpenReadWrite(journalTestDir + "/0.wal")
	noErr(t, err)
	recordBytes := int64(journalRecordOverhead + 1 + 40)
	// Flip a byte inside the third record's payload.
	_, err = f.WriteAt([]byte{'!'}, journalHeaderBytes+2*recordBytes+recordBytes-3)
	noErr(t, err)
	noErr(t, f.Close())
	jt.open(4096)
	got := jt.replay()
	require(t, len(got) == 2 && got[1].base == 1, "replayed %v, want the first two records", got)
	noErr(t, jt.j.Close())
}

// A reused file holds its new generation's records followed by records of
// its earlier use: those are not replayed.
func TestJournalReusedFileStaleRecords(t *testing.T) {
	const fileBytes = 512
	jt := newJournalTest(t, vfs.NewMem(), fileBytes)
	noErr(t, jt.j.Reset())
	var base int64
	for jt.checkpointCount() < 2 {
		noErr(t, jt.appendWait("a", base, base+1, journalPayload("a", base, 40)))
		waitCheckpointIdle(jt.j)
		base++
	}
	// 0.wal is active again (third generation) with one record, its
	// earlier records behind it; 1.wal holds the second generation.
	noErr(t, jt.appendWait("a", base, base+1, journalPayload("a", base, 40)))
	jt.reopen(fileBytes)
	got := jt.replay()
	require(t, len(got) > 1, "replayed %v", got)
	for k, g := range got {
		require(t, g.base == got[0].base+int64(k), "replayed bases %v are not consecutive", got)
	}
	require(t, got[len(got)-1].base == base, "the last replayed is %d, want %d", got[len(got)-1].base, base)
	noErr(t, jt.j.Close())
}

func TestJournalRefusesOversizedRecord(t *testing.T) {
	jt := newJournalTest(t, vfs.NewMem(), 512)
	noErr(t, jt.j.Reset())
	_, ok := jt.j.Append("a", 0, 1, [][]byte{make([]byte, 512-journalHeaderBytes-journalRecordOverhead)})
	require(t, !ok, "a record larger than a file was taken")
	ticket, ok := jt.j.Append("a", 0, 1, [][]byte{make([]byte, 512-journalHeaderBytes-journalRecordOverhead-1)})
	require(t, ok, "a record filling a file was refused")
	noErr(t, jt.j.Wait("a", ticket))
	noErr(t, jt.j.Close())
}

// A failed fdatasync fails every record it covered and the journal.
func TestJournalSyncFailureIsSticky(t *testing.T) {
	efs := vfs.NewErrorFS(vfs.NewMem())
	jt := newJournalTest(t, efs, 4096)
	noErr(t, jt.j.Reset())
	noErr(t, jt.appendWait("a", 0, 1, "before"))
	efs.Inject(vfs.Rule{Op: vfs.OpSync, PathContains: ".wal"})
	t1, ok1 := jt.j.Append("a", 1, 2, [][]byte{[]byte("one")})
	t2, ok2 := jt.j.Append("b", 0, 1, [][]byte{[]byte("two")})
	require(t, ok1 && ok2, "appends refused")
	require(t, errors.Is(jt.j.Wait("a", t1), vfs.ErrInjected), "first waiter not failed")
	require(t, errors.Is(jt.j.Wait("b", t2), vfs.ErrInjected), "second waiter not failed")
	require(t, efs.Injected() == 1, "%d injected failures", efs.Injected())
	_, ok := jt.j.Append("a", 2, 3, [][]byte{[]byte("after")})
	require(t, !ok, "append taken after a failed sync")
	require(t, errors.Is(jt.fence("a", 0), vfs.ErrInjected), "fence not failed")
	noErr(t, jt.j.Close())
}

// A write that fails part way fails its records and the journal; the
// torn bytes it left are not replayed.
func TestJournalWriteFailureIsSticky(t *testing.T) {
	efs := vfs.NewErrorFS(vfs.NewMem())
	jt := newJournalTest(t, efs, 4096)
	noErr(t, jt.j.Reset())
	noErr(t, jt.appendWait("a", 0, 1, "before"))
	efs.Inject(vfs.Rule{Op: vfs.OpWrite, PathContains: ".wal", PartialBytes: journalRecordOverhead + 3})
	require(t, errors.Is(jt.appendWait("a", 1, 2, journalPayload("a", 1, 40)), vfs.ErrInjected), "waiter not failed")
	_, ok := jt.j.Append("a", 2, 3, [][]byte{[]byte("after")})
	require(t, !ok, "append taken after a failed write")
	efs.Clear()
	jt.reopen(4096)
	got := jt.replay()
	require(t, len(got) == 1 && got[0].batches == "before", "replayed %v", got)
	noErr(t, jt.j.Close())
}

// Close drops queued records: their Wait fails, and Append refuses.
func TestJournalClose(t *testing.T) {
	jt := newJournalTest(t, vfs.NewMem(), 4096)
	noErr(t, jt.j.Reset())
	ticket, ok := jt.j.Append("a", 0, 1, [][]byte{[]byte("queued")})
	require(t, ok, "append refused")
	noErr(t, jt.j.Close())
	require(t, errors.Is(jt.j.Wait("a", ticket), errJournalClosed), "wait after Close did not fail")
	_, ok = jt.j.Append("a", 1, 2, [][]byte{[]byte("late")})
	require(t, !ok, "append taken after Close")
	noErr(t, jt.j.Close())
	jt.open(4096)
	require(t, len(jt.replay()) == 0, "a dropped record replayed")
	noErr(t, jt.j.Close())
}

// A failed checkpoint syncfs fails the journal and does not reach
// Checkpointed.
func TestJournalCheckpointSyncFSFailure(t *testing.T) {
	efs := vfs.NewErrorFS(vfs.NewMem())
	jt := newJournalTest(t, efs, 512)
	noErr(t, jt.j.Reset())
	efs.Inject(vfs.Rule{Op: vfs.OpSyncFS})
	noErr(t, jt.appendWait("a", 0, 1, "one"))
	jt.j.Checkpoint()
	waitCheckpointIdle(jt.j)
	require(t, efs.Injected() == 1, "the syncfs was not attempted")
	require(t, jt.checkpointCount() == 0, "Checkpointed called after a failed syncfs")
	_, ok := jt.j.Append("a", 1, 2, [][]byte{[]byte("two")})
	require(t, !ok, "append taken after a failed checkpoint")
	noErr(t, jt.j.Close())
}

// Checkpoint retires the active file on demand (not an empty one), and
// retries a Checkpointed that failed, after which the file is reused.
func TestJournalCheckpointForcedAndRetried(t *testing.T) {
	jt := newJournalTest(t, vfs.NewMem(), 512)
	noErr(t, jt.j.Reset())
	jt.j.Checkpoint()
	waitCheckpointIdle(jt.j)
	require(t, jt.checkpointCount() == 0, "an empty file was checkpointed")

	failures := 1
	jt.checkpointed = func(map[string]int64) error {
		if failures > 0 {
			failures--
			return errors.New("recovery points not written")
		}
		return nil
	}
	noErr(t, jt.appendWait("a", 0, 5, "one"))
	jt.j.Checkpoint()
	waitCheckpointIdle(jt.j)
	require(t, jt.checkpointCount() == 0, "a failed Checkpointed counted")
	// The file is out of use: the other one fills up, then refuses.
	var base int64 = 5
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		err = jt.appendWait("a", base, base+1, journalPayload("a", base, 60))
		base++
	}
	require(t, errors.Is(err, ErrJournalFull), "got %v, want ErrJournalFull", err)
	jt.j.Checkpoint() // retries the callback
	waitCheckpointIdle(jt.j)
	require(t, jt.checkpointCount() == 1 && jt.checkpoints[0]["a"] == 5, "checkpoints %v", jt.checkpoints)
	base--
	noErr(t, jt.appendWait("a", base, base+1, "fits in the reused file"))
	noErr(t, jt.j.Close())
}

// After Reset, records of the journal's last life are gone even where the
// new ones end exactly on one of their boundaries.
func TestJournalResetForgetsRecords(t *testing.T) {
	jt := newJournalTest(t, vfs.NewMem(), 4096)
	noErr(t, jt.j.Reset())
	for i := int64(0); i < 3; i++ {
		noErr(t, jt.appendWait("a", i, i+1, journalPayload("a", i, 40)))
	}
	jt.reopen(4096)
	require(t, len(jt.replay()) == 3, "replayed %v", jt.replay())
	noErr(t, jt.j.Reset())
	noErr(t, jt.appendWait("a", 3, 4, journalPayload("a", 3, 40)))
	jt.reopen(4096)
	got := jt.replay()
	require(t, len(got) == 1 && got[0].base == 3, "replayed %v, want only the record after Reset", got)
	noErr(t, jt.j.Close())
}

// BenchmarkJournalAppendWait measures the journal on the real disk:
// appenders each journal 2 KiB and wait for it, as rounds of many
// partitions would; records/sync shows how many share an fdatasync, and
// full/op the share refused while a checkpoint ran.
// Default file size, so checkpoints (a syncfs of the temp directory's
// file system) run every 64 MiB.
func BenchmarkJournalAppendWait(b *testing.B) {
	for _, appenders := range []int{2, 64, 1024} {
		// RunParallel runs a multiple of GOMAXPROCS goroutines.
		perProc := max(appenders/runtime.GOMAXPROCS(0), 1)
		b.Run(fmt.Sprintf("appenders=%d", perProc*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			probe := newCrashProbe(vfs.OS())
			dir := benchDir(b)
			syncer, err := probe.OpenFileSystemSyncer(dir)
			noErr(b, err)
			defer syncer.Close()
			j, err := OpenJournal(JournalOptions{FS: probe, Dir: dir + "/journal", Syncer: syncer, Logger: quietLogger})
			noErr(b, err)
			defer j.Close()
			noErr(b, j.Reset())
			var syncs atomic.Int64
			probe.setHook(func(op vfs.Op, path string) error {
				if op == vfs.OpSync && strings.HasSuffix(path, ".wal") {
					syncs.Add(1)
				}
				return nil
			})
			payload := [][]byte{make([]byte, 2048)}
			var next, full atomic.Int64
			b.SetBytes(2048)
			b.SetParallelism(perProc)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				name := fmt.Sprintf("bench-%d", next.Add(1))
				for base := int64(0); pb.Next(); base++ {
					ticket, ok := j.Append(name, base, base+1, payload)
					if !ok {
						b.Error("append refused")
						return
					}
					err := j.Wait(name, ticket)
					if errors.Is(err, ErrJournalFull) {
						full.Add(1)
					} else if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/float64(max(syncs.Load(), 1)), "records/sync")
			b.ReportMetric(float64(full.Load())/float64(b.N), "full/op")
		})
	}
}

// fence journals a fence and waits for it.
func (jt *journalTest) fence(name string, from int64) error {
	_, err := jt.j.Fence(name, from)
	return err
}
