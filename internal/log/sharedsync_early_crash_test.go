package log

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/vfs"
)

// TestSharedSyncEarlyCrashManyLogs is TestSharedSyncCrashManyLogs for the
// early syncfs (SharedSync.Written): producers each write a request's
// batches to several logs with Log.Write before waiting on any, as a
// produce does, with minEarly lowered so that Written starts syncfs
// calls on its own goroutine while rounds are still written and waited
// on. The crash comes before a random file operation, the early syncfs
// calls among them. Every append acknowledged before the crash must be
// recovered: an early syncfs that acknowledged a round written after it
// began (writtenAt read before the write ended, or a generation counted
// as covered before it ran) would lose acknowledged bytes here.
func TestSharedSyncEarlyCrashManyLogs(t *testing.T) {
	var early atomic.Int64
	crashRun(t, crashSeeds(t, 32, 400), func(t *testing.T, seed uint64) {
		early.Add(runSharedSyncEarlyCrash(t, seed))
	})
	if os.Getenv(crashSeedEnv) == "" {
		require(t, early.Load() > 0, "no run started an early syncfs: the test did not exercise Written")
	}
}

func runSharedSyncEarlyCrash(t *testing.T, seed uint64) int64 {
	c := startSharedCrash(t, seed, func(fs vfs.FS) vfs.FS { return lateSyncFS{fs} })
	c.m.sharedSync.minEarly = int64(1 + c.rng.IntN(3))
	const producers = 3
	requests := 5 + c.rng.IntN(10)
	k := c.arm(int64(producers*requests*sharedCrashLogs), vfs.OpSync)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		prng := crashRand(seed, uint64(p+1))
		go func() {
			defer wg.Done()
			for r := range requests {
				earlyProduce(c.logs, c.hists, prng, c.cfg, c.clk, fmt.Sprintf("p%d-%d", p, r))
			}
		}()
	}
	wg.Wait()
	stats := c.finish()
	t.Logf("%d syncfs (%d early) covering %d rounds, %d lone fdatasyncs; crash at op %d", stats.SyncFS, stats.EarlySyncFS, stats.SharedRuns, stats.FileSyncs, k)
	return stats.EarlySyncFS
}

// earlyProduce is one produce request over a random subset of logs:
// enqueue a batch on each, write each (Log.Write, which reports the round
// to Written), then wait on each in a random order, recording what was
// acknowledged.
func earlyProduce(logs []*Log, hists []*crashHistory, rng *rand.Rand, cfg Config, clk *clock.Manual, tag string) {
	type pending struct {
		i    int
		buf  []byte
		info AppendInfo
	}
	var reqs []pending
	for _, i := range rng.Perm(len(logs))[:1+rng.IntN(len(logs))] {
		buf := crashPayload(rng, cfg, clk.Now().UnixMilli(), fmt.Sprintf("%s-l%d", tag, i))
		info, err := logs[i].Enqueue(buf, AppendOptions{LeaderEpoch: -1})
		if err != nil {
			hists[i].failed(fmt.Errorf("enqueue %s: %w", tag, err))
			continue
		}
		reqs = append(reqs, pending{i: i, buf: buf, info: info})
	}
	for _, r := range reqs {
		logs[r.i].Write(r.info.LastOffset + 1)
	}
	rng.Shuffle(len(reqs), func(a, b int) { reqs[a], reqs[b] = reqs[b], reqs[a] })
	for _, r := range reqs {
		if _, err := logs[r.i].WaitDurable(r.info.LastOffset + 1); err != nil {
			hists[r.i].failed(fmt.Errorf("wait %s: %w", tag, err))
			continue
		}
		h := hists[r.i]
		h.mu.Lock()
		h.appends = append(h.appends, crashAppend{buf: r.buf, first: r.info.FirstOffset, last: r.info.LastOffset})
		h.ackedEnd = max(h.ackedEnd, r.info.LastOffset+1)
		h.mu.Unlock()
	}
	if rng.IntN(8) == 0 {
		clk.Advance(time.Duration(rng.IntN(30)) * time.Millisecond)
	}
}

// lateSyncFS makes each syncfs take a while after it made the file system
// durable, rather than before: the crash model then keeps only what was
// written before the syncfs began, the most a syncfs may promise for
// writes that land while it runs, and rounds pile up behind it.
type lateSyncFS struct{ vfs.FS }

func (l lateSyncFS) OpenFileSystemSyncer(dir string) (vfs.FileSystemSyncer, error) {
	inner, err := l.FS.OpenFileSystemSyncer(dir)
	if err != nil {
		return nil, err
	}
	return lateSyncer{inner}, nil
}

type lateSyncer struct{ vfs.FileSystemSyncer }

func (s lateSyncer) SyncFS() error {
	err := s.FileSystemSyncer.SyncFS()
	time.Sleep(100 * time.Microsecond)
	return err
}
