package log

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

// Crash tests of the journal: a seeded workload (concurrent appenders,
// files filling up and rotating, forced checkpoints) is run once per file
// operation it makes, crashing just before that operation (a CrashClone,
// so unsynced writes are kept in part, the last one possibly torn), and
// the journal reopened from the clone must replay:
//
//   - every record whose Wait returned nil before the crash, unless a
//     Checkpointed that had returned before it covered the record's end
//     (the logs then hold it durably on their own);
//   - nothing that was not appended: every record byte for byte as sent,
//     each log's records in the order they were appended.
//
// Replay one seed with
//
//	SLUICE_CRASH_SEED=<seed> go test -race -run '^TestJournalCrashEveryOp$' ./internal/log/

const journalCrashFileBytes = 1024

type journalCrashRecord struct {
	name      string
	base, end int64
	payload   string
}

// journalCrashState is what the workload told its callers, as of now.
type journalCrashState struct {
	mu       sync.Mutex
	appended map[string]map[int64]journalCrashRecord // every record handed to Append
	acked    []journalCrashRecord                    // Wait returned nil
	covered  map[string]int64                        // highest end a returned Checkpointed got
	errs     []error
}

// journalCrashSnapshot is the file system a crash left and what had been
// promised by then.
type journalCrashSnapshot struct {
	fs      *vfs.MemFS
	acked   []journalCrashRecord
	covered map[string]int64
}

func TestJournalCrashEveryOp(t *testing.T) {
	crashRun(t, crashSeeds(t, 3, 100), func(t *testing.T, seed uint64) {
		ops, st, _ := runJournalCrashWorkload(t, seed, -1)
		t.Logf("%d mutating operations, %d records acknowledged, checkpointed to %v", ops, len(st.acked), st.covered)
		// Concurrent appenders make the count vary a little from run to run.
		for k := int64(1); k <= ops+4; k++ {
			_, st, snap := runJournalCrashWorkload(t, seed, k)
			checkJournalCrash(t, fmt.Sprintf("crash before operation %d of %d", k, ops), st, snap)
		}
	})
}

// runJournalCrashWorkload runs the workload of seed and crashes just
// before its crashAt-th mutating file operation (never if crashAt < 1: the
// snapshot is then taken once the journal is closed). It returns how many
// mutating operations the workload made.
func runJournalCrashWorkload(t *testing.T, seed uint64, crashAt int64) (int64, *journalCrashState, *journalCrashSnapshot) {
	t.Helper()
	rng := crashRand(seed, 0)
	mem := vfs.NewMem()
	probe := newCrashProbe(mem)
	st := &journalCrashState{appended: map[string]map[int64]journalCrashRecord{}, covered: map[string]int64{}}
	var snap *journalCrashSnapshot
	var once sync.Once
	crashRng := crashRand(seed, uint64(1000+max(crashAt, 0)))
	crash := func() {
		once.Do(func() {
			st.mu.Lock()
			defer st.mu.Unlock()
			snap = &journalCrashSnapshot{fs: mem.CrashClone(crashRng), acked: slices.Clone(st.acked), covered: maps.Clone(st.covered)}
		})
	}
	var ops atomic.Int64
	probe.setHook(func(op vfs.Op, _ string) error {
		if crashMutates(op) && ops.Add(1) == crashAt {
			crash()
		}
		return nil
	})
	syncer, err := probe.OpenFileSystemSyncer("/")
	noErr(t, err)
	// Two lives of the journal: the second replays the first and resets
	// it (the logs have the records by then), so a crash can also hit
	// Reset, or the second life's writes over the first's files.
	for life := 0; life < 2; life++ {
		j, err := OpenJournal(JournalOptions{FS: probe, Dir: journalTestDir, FileBytes: journalCrashFileBytes, Syncer: syncer,
			Logger: quietLogger, Checkpointed: st.checkpointed})
		noErr(t, err)
		noErr(t, j.Replay(func(string, int64, []byte, int64) error { return nil }))
		st.coverAll()
		noErr(t, j.Reset())
		appenders := 1 + rng.IntN(3)
		var wg sync.WaitGroup
		for a := 0; a < appenders; a++ {
			wg.Add(1)
			arng := crashRand(seed, uint64(life*10+a+1))
			prefix := fmt.Sprintf("l%dt%d", life, a)
			go func() {
				defer wg.Done()
				st.appender(j, arng, prefix, 40/appenders)
			}()
		}
		wg.Wait()
		noErr(t, j.Close())
	}
	noErr(t, syncer.Close())
	crash()
	probe.setHook(nil)
	require(t, len(st.errs) == 0, "the workload failed without a crash: %v", st.errs)
	return ops.Load(), st, snap
}

func (st *journalCrashState) checkpointed(ends map[string]int64, _ uint64) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	for name, end := range ends {
		st.covered[name] = max(st.covered[name], end)
	}
	return nil
}

// coverAll notes every record appended so far as durable in its log, as
// the manager's replay makes them before it resets the journal.
func (st *journalCrashState) coverAll() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for name, recs := range st.appended {
		for _, rec := range recs {
			st.covered[name] = max(st.covered[name], rec.end)
		}
	}
}

// appender journals n records for two logs of its own, forcing a
// checkpoint now and then.
func (st *journalCrashState) appender(j *Journal, rng *rand.Rand, prefix string, n int) {
	next := map[string]int64{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s-%d", prefix, rng.IntN(2))
		base := next[name]
		rec := journalCrashRecord{name: name, base: base, end: base + 1 + rng.Int64N(3)}
		rec.payload = journalPayload(name, base, 12+rng.IntN(100))
		next[name] = rec.end
		st.mu.Lock()
		if st.appended[name] == nil {
			st.appended[name] = map[int64]journalCrashRecord{}
		}
		st.appended[name][base] = rec
		st.mu.Unlock()
		ticket, ok := j.Append(name, rec.base, rec.end, [][]byte{[]byte(rec.payload)})
		err := errors.New("append refused")
		if ok {
			err = j.Wait(name, ticket)
		}
		st.mu.Lock()
		switch {
		case err == nil:
			st.acked = append(st.acked, rec)
		case !errors.Is(err, ErrJournalFull): // a full journal sends the log to its own fsync
			st.errs = append(st.errs, fmt.Errorf("%s@%d: %w", name, base, err))
		}
		st.mu.Unlock()
		if rng.IntN(8) == 0 {
			j.Checkpoint()
		}
	}
}

func checkJournalCrash(t *testing.T, what string, st *journalCrashState, snap *journalCrashSnapshot) {
	t.Helper()
	syncer, err := snap.fs.OpenFileSystemSyncer("/")
	noErr(t, err)
	defer syncer.Close()
	j, err := OpenJournal(JournalOptions{FS: snap.fs, Dir: journalTestDir, FileBytes: journalCrashFileBytes, Syncer: syncer, Logger: quietLogger})
	require(t, err == nil, "%s: reopen: %v", what, err)
	last := map[string]int64{}
	replayed := map[string]map[int64]bool{}
	err = j.Replay(func(name string, base int64, batches []byte, limit int64) error {
		rec, ok := st.appended[name][base]
		switch {
		case !ok || rec.payload != string(batches):
			return fmt.Errorf("replayed %s@%d %q, which was never appended", name, base, batches)
		case limit != math.MaxInt64:
			return fmt.Errorf("replayed %s@%d with limit %d and no fence", name, base, limit)
		case replayed[name] != nil && base <= last[name]:
			return fmt.Errorf("replayed %s@%d after %s@%d", name, base, name, last[name])
		}
		if replayed[name] == nil {
			replayed[name] = map[int64]bool{}
		}
		replayed[name][base], last[name] = true, base
		return nil
	})
	require(t, err == nil, "%s: %v", what, err)
	for _, rec := range snap.acked {
		require(t, rec.end <= snap.covered[rec.name] || replayed[rec.name][rec.base],
			"%s: acknowledged %s@%d (end %d, checkpointed to %d) was not replayed", what, rec.name, rec.base, rec.end, snap.covered[rec.name])
	}
	// The journal goes on from there.
	noErr(t, j.Reset())
	ticket, ok := j.Append("after", 0, 1, [][]byte{[]byte("after the crash")})
	require(t, ok, "%s: append refused after recovery", what)
	noErr(t, j.Wait("after", ticket))
	noErr(t, j.Close())
}
