package coord

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// TestCoordOffsetsTopicStaysBoundedWithTheCleaner commits offsets for 100
// partitions again and again to a small-segment __consumer_offsets, with
// a cleaner thread running as on a broker (10 ms backoff), and checks that the partition's
// bytes on disk stay bounded by its live keys instead of growing with the
// commits; that a restarted coordinator loads the compacted log to the
// latest offsets; and that the tombstones an OffsetDelete writes are
// themselves cleaned once delete.retention.ms has passed.
//
// SLUICE_LONG_TESTS=1 makes it the measurement: 1,000,000 offset
// commits (10,000 requests of 100 partitions).
func TestCoordOffsetsTopicStaysBoundedWithTheCleaner(t *testing.T) {
	requests := 300
	if os.Getenv("SLUICE_LONG_TESTS") == "1" {
		requests = 10_000
	}
	const partitions, segmentBytes = 100, 64 << 10
	f := &fixture{t: t, fs: vfs.OS(), dir: t.TempDir(), clock: clock.Real(), img: metadata.EmptyImage(),
		cfg:     Config{OffsetsTopicNumPartitions: 1, GroupInitialRebalanceDelayMs: -1},
		cleaner: log.CleanerConfig{Threads: 1, DedupeBufferBytes: 1 << 20, BackoffMs: 10}}
	f.open()
	f.createTopic("events", partitions, nil)
	f.ready("g")
	f.apply(
		&metadata.Config{ResourceType: metadata.ConfigResourceTopic, ResourceName: OffsetsTopic, Name: config.SegmentBytes, Value: strconv.Itoa(segmentBytes)},
		&metadata.Config{ResourceType: metadata.ConfigResourceTopic, ResourceName: OffsetsTopic, Name: config.DeleteRetentionMs, Value: "0"},
	)
	l, ok := f.logs.Log(log.TopicPartition{Topic: OffsetsTopic, Partition: 0})
	require(t, ok, "no __consumer_offsets-0 log")
	offsets := map[int32]int64{}
	largest := int64(0)
	start := time.Now()
	cleanerCtx, stopCleaner := context.WithCancel(context.Background())
	cleanerDone := make(chan struct{})
	go func() {
		defer close(cleanerDone)
		f.logs.RunCleaner(cleanerCtx)
	}()
	for i := range requests {
		for p := range int32(partitions) {
			offsets[p] = int64(i*partitions) + int64(p)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := f.coord.CommitOffsets(ctx, commit("g", -1, "", "events", offsets))
		cancel()
		noErr(t, err)
		largest = max(largest, l.Size())
	}
	stopCleaner()
	<-cleanerDone
	commits := requests * partitions
	t.Logf("%d offset commits (%d requests of %d partitions), segment.bytes %d: %d bytes on disk at the end, %d at most, in %v",
		commits, requests, partitions, segmentBytes, l.Size(), largest, time.Since(start).Round(time.Millisecond))
	// Without compaction: about 49 bytes a commit. With it: the live keys
	// (100 offsets, the group), the active segment and the dirty segments
	// the ratio lets wait, whatever the number of commits.
	require(t, largest < 10*segmentBytes, "__consumer_offsets-0 grew to %d bytes for %d commits", largest, commits)

	f.restart()
	f.ready("g")
	fr, err := f.coord.FetchOffsets(ctxT(t), FetchRequest{GroupID: "g", Topics: []FetchTopic{{Name: "events", Partitions: []int32{0, 99}}}})
	noErr(t, err)
	require(t, fr.Topics[0].Partitions[0].Offset == offsets[0] && fr.Topics[0].Partitions[1].Offset == offsets[99],
		"after reload offsets %+v, want %d and %d", fr.Topics[0].Partitions, offsets[0], offsets[99])

	// OffsetDelete writes tombstones; with delete.retention.ms=0 the clean
	// after the one that stamped their horizon removes them.
	_, err = f.coord.DeleteOffsets(ctxT(t), DeleteOffsetsRequest{GroupID: "g", Topics: []FetchTopic{{Name: "events", Partitions: []int32{0, 1, 2}}}})
	noErr(t, err)
	l, _ = f.logs.Log(log.TopicPartition{Topic: OffsetsTopic, Partition: 0})
	require(t, countTombstones(t, l) == 3, "want the 3 tombstones of the OffsetDelete in the log")
	for range 4 {
		// Roll past the tombstones so they are in a sealed segment.
		_, err := f.coord.CommitOffsets(ctxT(t), commit("g", -1, "", "events", offsets))
		noErr(t, err)
	}
	noErr(t, rollLog(l, f, "g"))
	for range 3 {
		_, err := l.CleanNow(1 << 20)
		noErr(t, err)
		time.Sleep(2 * time.Millisecond) // past the horizon, with delete.retention.ms=0
	}
	require(t, countTombstones(t, l) == 0, "tombstones left after delete.retention.ms: %d", countTombstones(t, l))

	// Deleting the group writes a tombstone per remaining offset; once
	// cleaned, the partition holds next to nothing of it.
	res := f.coord.DeleteGroups(ctxT(t), []string{"g"})
	noErr(t, res[0].Err)
	require(t, countTombstones(t, l) >= partitions-3, "DeleteGroups wrote %d tombstones", countTombstones(t, l))
	noErr(t, rollLog(l, f, "other"))
	for range 3 {
		_, err := l.CleanNow(1 << 20)
		noErr(t, err)
		time.Sleep(2 * time.Millisecond)
	}
	require(t, countTombstones(t, l) == 0, "group tombstones left after delete.retention.ms: %d", countTombstones(t, l))
}

// rollLog commits for group until the log rolls, so what came before is
// sealed.
func rollLog(l *log.Log, f *fixture, group string) error {
	segments := l.NumSegments()
	for i := 0; l.NumSegments() == segments; i++ {
		offsets := map[int32]int64{}
		for p := range int32(100) {
			offsets[p] = int64(1_000_000 + i)
		}
		if _, err := f.coord.CommitOffsets(ctxT(f.t), commit(group, -1, "", "events", offsets)); err != nil {
			return err
		}
	}
	return nil
}

// countTombstones reads the whole log and counts null values.
func countTombstones(t *testing.T, l *log.Log) int {
	t.Helper()
	n := 0
	for offset := l.LogStartOffset(); offset < l.LogEndOffset(); {
		s, err := l.Read(offset, log.ReadOptions{MaxBytes: 1 << 20, MaxOffset: log.NoMaxOffset, MinOneBatch: true})
		noErr(t, err)
		buf, err := s.AppendTo(nil)
		s.Release()
		noErr(t, err)
		for rest := buf; len(rest) > 0; {
			batch, next, h, err := record.NextBatch(rest)
			if err != nil {
				break // a partial batch at the end of the range
			}
			noErr(t, record.Records(batch, 1<<20, func(r *record.Record) error {
				if r.Value == nil {
					n++
				}
				return nil
			}))
			rest, offset = next, h.NextOffset()
		}
	}
	return n
}
