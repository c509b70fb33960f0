package log

import (
	"bytes"
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
