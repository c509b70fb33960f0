package log

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

// TestManagerDeleteCrashAtEveryStep crashes at each mutating operation of
// a deletion and of the re-creation of the same partition that follows,
// and reopens from what the crash left: the other partition's log must be
// whole, the deleted one either back whole (only if the crash came before
// Delete returned) or gone, the re-created one a prefix of what was
// appended to it, and no -sluice-delete directory left behind.
func TestManagerDeleteCrashAtEveryStep(t *testing.T) {
	crashRun(t, crashSeeds(t, 2, 20), func(t *testing.T, seed uint64) {
		for k := int64(1); ; k++ {
			if !deleteCrashAt(t, seed, k) {
				t.Logf("crashed at %d points", k-1)
				return
			}
		}
	})
}

// deleteCrashAt runs the workload with a crash before its k-th mutating
// operation, and says whether the crash happened (false: k is past the
// workload's end).
func deleteCrashAt(t *testing.T, seed uint64, k int64) bool {
	t.Helper()
	cfg := smallConfig()
	mem := vfs.NewMem()
	noErr(t, mem.MkdirAll("/data", 0o755))
	// A re-created directory must not stand in for the rename's fsync.
	mem.SetStrictMkdir(true)
	probe := newCrashProbe(mem)
	env := newManagerEnv(cfg)
	env.opts.FS = probe
	m := env.open(t)
	gone, kept := TopicPartition{Topic: "orders", Partition: 0}, TopicPartition{Topic: "orders", Partition: 1}
	old := map[TopicPartition][]byte{}
	for _, tp := range []TopicPartition{gone, kept} {
		l, err := m.GetOrCreate(tp, cfg)
		noErr(t, err)
		for i := range 30 {
			b := testBatch(t, tp.String(), 2, 200, 1_700_000_000_000+int64(i))
			_, err := l.Append(b, AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
			old[tp] = append(old[tp], b...)
		}
		noErr(t, l.Flush())
	}
	var snapshot atomic.Pointer[vfs.MemFS]
	var ops atomic.Int64
	rng := crashRand(seed, uint64(k))
	probe.setHook(func(op vfs.Op, _ string) error {
		if crashMutates(op) && ops.Add(1) == k {
			snapshot.Store(mem.CrashClone(rng))
		}
		return nil
	})
	deleteOK := m.Delete(gone) == nil
	deletedBeforeCrash := deleteOK && snapshot.Load() == nil
	var recreated []byte
	if l, err := m.GetOrCreate(gone, cfg); err == nil {
		for i := range 3 {
			b := testBatch(t, "new", 2, 100, 1_700_000_000_000+int64(i))
			_, err := l.Append(b, AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
			recreated = append(recreated, b...)
		}
		noErr(t, l.Flush())
	}
	noErr(t, m.Close())
	probe.setHook(nil)
	crashed := snapshot.Load()
	if crashed == nil {
		return false
	}
	env.opts.FS = crashed
	m2, err := OpenManager(env.opts)
	noErr(t, err)
	defer m2.Close()
	l, ok := m2.Log(kept)
	require(t, ok && bytes.Equal(readAll(t, l, 0), old[kept]), "k=%d: the live log %s is not whole after the crash", k, kept)
	if l, ok := m2.Log(gone); ok {
		got := readAll(t, l, 0)
		switch {
		case bytes.Equal(got, old[gone]):
			require(t, !deletedBeforeCrash, "k=%d: a log deleted before the crash is back", k)
		default:
			require(t, bytes.HasPrefix(recreated, got), "k=%d: %s holds %d bytes that are neither the old log nor the new one", k, gone, len(got))
		}
	}
	names, err := crashed.List("/data")
	noErr(t, err)
	for _, name := range names {
		require(t, !strings.HasSuffix(name, deletedLogDirSuffix), "k=%d: %s left after the reopen", k, name)
	}
	return true
}

// TestManagerRecreatedLogIgnoresTheDeletedOnesCheckpoints: a partition
// deleted and created again before the next checkpoint, then a crash. The
// checkpoints on disk still held the deleted log's log start and
// recovery point, and the restart applied them to the new log of the
// same name: its records below the old start were out of reach (the start
// is clamped to the log end), and its unsynced tail, below the old
// recovery point, was trusted without recovery.
func TestManagerRecreatedLogIgnoresTheDeletedOnesCheckpoints(t *testing.T) {
	cfg := smallConfig()
	env := newManagerEnv(cfg)
	m := env.open(t)
	tp := TopicPartition{Topic: "orders", Partition: 0}
	l, err := m.GetOrCreate(tp, cfg)
	noErr(t, err)
	for i := range 20 {
		_, err := l.Append(testBatch(t, "old", 2, 200, 1_700_000_000_000+int64(i)), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	noErr(t, l.Flush())
	_, err = m.DeleteRecordsBefore(tp, 30)
	noErr(t, err)
	noErr(t, m.Checkpoint())
	noErr(t, m.Delete(tp))

	l, err = m.GetOrCreate(tp, cfg)
	noErr(t, err)
	var want []byte
	for i := range 3 {
		b := testBatch(t, "new", 2, 100, 1_700_000_000_000+int64(i))
		_, err := l.Append(b, AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
		want = append(want, b...)
	}
	noErr(t, l.Flush())

	env.opts.FS = env.mem.CrashClone(crashRand(1, 1))
	m2, err := OpenManager(env.opts)
	noErr(t, err)
	defer m2.Close()
	l, ok := m2.Log(tp)
	require(t, ok, "the re-created log is gone after the crash")
	require(t, l.LogStartOffset() == 0, "the re-created log starts at %d after the crash, want 0", l.LogStartOffset())
	require(t, bytes.Equal(readAll(t, l, 0), want), "the re-created log's records differ after the crash")
	noErr(t, m.Close())
}
