package coord

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
)

// BenchmarkCoordRebalance100 measures one group of 100 members forming:
// every member joins at once (no initial delay), syncs, and rejoins when a
// heartbeat says a rebalance is under way, until all 100 hold the
// assignment of one generation.
func BenchmarkCoordRebalance100(b *testing.B) {
	const members = 100
	f := newFixture(b, clock.Real(), Config{OffsetsTopicNumPartitions: 1, GroupInitialRebalanceDelayMs: -1})
	f.ready("warm")
	ctx := ctxT(b)
	b.ResetTimer()
	for i := range b.N {
		groupID := fmt.Sprintf("bench-%d", i)
		var wg sync.WaitGroup
		var stop atomic.Bool
		gens := make([]atomic.Int32, members)
		for m := range members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runMember(ctx, f.coord, groupID, &gens[m], &stop)
			}()
		}
		// Done when every member synced the group's current generation.
		for {
			d := f.coord.DescribeGroups(ctx, []string{groupID})[0]
			if d.State == StateStable && len(d.Members) == members {
				gen := gens[0].Load()
				all := gen > 0
				for m := range gens {
					all = all && gens[m].Load() == gen
				}
				if all {
					break
				}
			}
			time.Sleep(100 * time.Microsecond)
		}
		b.StopTimer()
		stop.Store(true)
		wg.Wait()
		b.StartTimer()
	}
}

// runMember is a consumer's group loop: join, sync (the leader assigns
// everyone), heartbeat, rejoin on REBALANCE_IN_PROGRESS.
func runMember(ctx context.Context, c *Coordinator, groupID string, synced *atomic.Int32, stop *atomic.Bool) {
	req := consumerJoin(groupID, "")
	for !stop.Load() {
		j, err := c.Join(ctx, req)
		if err != nil {
			return
		}
		req.MemberID = j.MemberID
		sreq := SyncRequest{GroupID: groupID, GenerationID: j.GenerationID, MemberID: j.MemberID}
		for _, m := range j.Members {
			sreq.Assignments = append(sreq.Assignments, MemberAssignment{MemberID: m.MemberID, Assignment: []byte("p")})
		}
		if _, err := c.Sync(ctx, sreq); err != nil {
			continue
		}
		synced.Store(j.GenerationID)
		for !stop.Load() {
			err := c.Heartbeat(ctx, HeartbeatRequest{GroupID: groupID, GenerationID: j.GenerationID, MemberID: j.MemberID})
			if err != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	_, _ = c.Leave(ctx, LeaveRequest{GroupID: groupID, Members: []LeavingMember{{MemberID: req.MemberID}}})
}

// BenchmarkCoordIdleGroupMemory reports the heap bytes per idle group
// (Empty, one committed offset) with 10,000 of them.
func BenchmarkCoordIdleGroupMemory(b *testing.B) {
	const groups = 10000
	for range b.N {
		f := newFixture(b, clock.Real(), Config{OffsetsTopicNumPartitions: 50})
		f.createTopic("events", 1, nil)
		f.ready("warm")
		ctx := ctxT(b)
		before := heapInUse()
		commitMany(b, ctx, f.coord, groups, func(i int) CommitRequest {
			return commit(fmt.Sprintf("idle-group-%05d", i), -1, "", "events", map[int32]int64{0: int64(i)})
		})
		after := heapInUse()
		b.ReportMetric(float64(after-before)/groups, "bytes/group")
		f.close()
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// benchClients is how many consumers commit at once.
const benchClients = 1024

// commitMany runs n commits from benchClients goroutines.
func commitMany(b *testing.B, ctx context.Context, c *Coordinator, n int, req func(i int) CommitRequest) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				res, err := c.CommitOffsets(ctx, req(i))
				if err == nil {
					for _, t := range res.Topics {
						for _, p := range t.Partitions {
							err = errors.Join(err, p.Err)
						}
					}
				}
				if err != nil {
					failed.Store(&err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		b.Fatal(*e)
	}
}

// BenchmarkCoordOffsetCommit measures OffsetCommit throughput with fsync
// on (the default flush policy): benchClients concurrent consumers, one group each,
// each commit carrying 10 partitions.
func BenchmarkCoordOffsetCommit(b *testing.B) {
	const partitionsPerCommit = 10
	f := newFixture(b, clock.Real(), Config{OffsetsTopicNumPartitions: 50})
	f.createTopic("events", partitionsPerCommit, nil)
	f.ready("warm")
	ctx := ctxT(b)
	b.ResetTimer()
	start := time.Now()
	commitMany(b, ctx, f.coord, b.N, func(i int) CommitRequest {
		offsets := make(map[int32]int64, partitionsPerCommit)
		for p := range partitionsPerCommit {
			offsets[int32(p)] = int64(i)
		}
		return commit(fmt.Sprintf("group-%d", i%benchClients), -1, "", "events", offsets)
	})
	elapsed := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/elapsed, "commits/s")
	b.ReportMetric(float64(b.N*partitionsPerCommit)/elapsed, "offsets/s")
}
