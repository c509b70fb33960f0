package log

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

// TestFileCacheClosesIdleActiveSegments: past the active limit, idle synced
// active segments are closed and reopened on demand by the writer and by
// readers; an unsynced one stays open until a sync covers it.
func TestFileCacheClosesIdleActiveSegments(t *testing.T) {
	for _, policy := range []FlushPolicy{FlushAlways, FlushNever} {
		t.Run(policy.String(), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.FlushPolicy = policy
			files := NewFileCacheWithActive(4, 2)
			fsys := vfs.NewMem()
			var logs []*Log
			for i := range 5 {
				l, err := Open(fsys, fmt.Sprintf("/data/t-%d", i), Options{Config: cfg, Files: files, Logger: quietLogger})
				noErr(t, err)
				defer l.Close()
				logs = append(logs, l)
			}
			require(t, files.OpenActiveFiles() == 2, "%d active files open after opening 5 logs, limit 2", files.OpenActiveFiles())
			for round := range 3 {
				for i, l := range logs {
					_, err := l.Append(testBatch(t, fmt.Sprintf("%d/%d", i, round), 1, 10, 1), AppendOptions{LeaderEpoch: -1})
					noErr(t, err)
				}
			}
			if policy == FlushNever {
				require(t, files.OpenActiveFiles() == 5, "%d active files open with 5 unsynced, want all 5", files.OpenActiveFiles())
				for _, l := range logs {
					noErr(t, l.Flush())
				}
			}
			require(t, files.OpenActiveFiles() == 2, "%d active files open when idle, limit 2", files.OpenActiveFiles())
			for i, l := range logs {
				got := readAll(t, l, 0)
				for round := range 3 {
					tag := fmt.Sprintf("%d/%d/0", i, round)
					require(t, bytes.Contains(got, []byte(tag)), "log %d: %s not read back after its file was closed", i, tag)
				}
				require(t, l.LogEndOffset() == 3, "log %d: end %d", i, l.LogEndOffset())
			}
			require(t, files.OpenActiveFiles() == 2, "%d active files open after reading, limit 2", files.OpenActiveFiles())
		})
	}
}

// TestFileCacheActiveSegmentsSurviveReopen: a log whose active segment was
// closed while idle closes cleanly and reopens with everything.
func TestFileCacheActiveSegmentsSurviveReopen(t *testing.T) {
	fsys := vfs.NewMem()
	m, err := OpenManager(ManagerOptions{FS: fsys, Dir: "/data", Config: DefaultConfig(), Logger: quietLogger, MaxOpenActiveSegments: 1})
	noErr(t, err)
	for i := range 3 {
		l, err := m.GetOrCreate(TopicPartition{Topic: "t", Partition: int32(i)}, DefaultConfig())
		noErr(t, err)
		_, err = l.Append(testBatch(t, fmt.Sprint(i), 2, 10, 1), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	require(t, m.OpenActiveFiles() == 1, "%d active files open, limit 1", m.OpenActiveFiles())
	noErr(t, m.Close())
	m, err = OpenManager(ManagerOptions{FS: fsys, Dir: "/data", Config: DefaultConfig(), Logger: quietLogger, MaxOpenActiveSegments: 1})
	noErr(t, err)
	defer m.Close()
	for i := range 3 {
		l, ok := m.Log(TopicPartition{Topic: "t", Partition: int32(i)})
		require(t, ok && l.LogEndOffset() == 2, "partition %d: not reopened with its 2 records", i)
	}
}
