package raft

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/vfs"
)

// countingMachine applies entries by counting them: the benchmark measures
// the quorum, not a state machine.
type countingMachine struct{ applied atomic.Uint64 }

func (m *countingMachine) Apply(uint64, []byte) error   { m.applied.Add(1); return nil }
func (m *countingMachine) Snapshot() ([]byte, error)    { return []byte("n"), nil }
func (m *countingMachine) Restore(uint64, []byte) error { return nil }

// BenchmarkProposeQuorumOfOne measures committed and applied proposals per
// second on a quorum of one on the real disk, every entry fsynced before it
// is acknowledged. Concurrent proposers share Readies, so one fsync covers
// many entries (group commit by Raft batching).
func BenchmarkProposeQuorumOfOne(b *testing.B) {
	for _, proposers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("proposers=%d", proposers), func(b *testing.B) {
			n, err := Start(Config{
				NodeID: 1, Voters: map[uint64]string{1: "127.0.0.1:0"}, Dir: b.TempDir(), FS: vfs.OS(),
				ListenAddr: "127.0.0.1:0", Logger: testLogger(),
			}, &countingMachine{})
			require(b, err)
			defer n.Stop()
			data := make([]byte, 128)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range proposers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := n.Propose(ctx, data); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "proposals/s")
		})
	}
}
