package partition

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sluicelog/sluice/internal/log"
)

// Replica fetchers (Kafka's ReplicaFetcherThread): one goroutine per
// leader broker pulls every partition this node follows from that leader
// with ordinary Fetch requests carrying this node's replica id. A target
// partition is first truncated where it diverges from the leader's log
// (OffsetForLeaderEpoch), then fetched from its log end offset.

// LeaderClient is a connection to another broker on this broker's behalf;
// internal/peer implements it over the Kafka protocol. Errors in results
// are this package's domain errors (ErrNotLeader, ErrFencedLeaderEpoch,
// ErrUnknownLeaderEpoch, ErrUnknownTopicOrPartition, log.ErrOffsetOutOfRange);
// a returned error means the connection failed and must be dialled again.
// Records in a result are valid only until the next call on the client.
type LeaderClient interface {
	Fetch(ctx context.Context, req ReplicaFetchRequest) ([]ReplicaFetchResult, error)
	OffsetsForLeaderEpoch(ctx context.Context, replicaID int32, queries []EpochQuery) ([]EpochAnswer, error)
	Close() error
}

// ReplicaFetchRequest is one follower fetch.
type ReplicaFetchRequest struct {
	ReplicaID  int32
	MaxWaitMs  int32
	MinBytes   int32
	MaxBytes   int32
	Partitions []ReplicaFetchPartition
}

// ReplicaFetchPartition is one partition of a follower fetch.
type ReplicaFetchPartition struct {
	Topic              string
	Partition          int32
	FetchOffset        int64
	LogStartOffset     int64
	CurrentLeaderEpoch int32
	MaxBytes           int32
}

// ReplicaFetchResult is the leader's answer for one partition.
type ReplicaFetchResult struct {
	Topic          string
	Partition      int32
	Err            error
	HighWatermark  int64
	LogStartOffset int64
	Records        []byte
}

// EpochQuery asks the leader where LeaderEpoch ends in its log.
type EpochQuery struct {
	Topic              string
	Partition          int32
	CurrentLeaderEpoch int32
	LeaderEpoch        int32
}

// EpochAnswer is the leader's OffsetForLeaderEpoch answer.
type EpochAnswer struct {
	Topic       string
	Partition   int32
	Err         error
	LeaderEpoch int32
	EndOffset   int64
}

// FetcherConfig are the replica.fetch.* settings.
type FetcherConfig struct {
	MaxWaitMs        int32 // replica.fetch.wait.max.ms
	MaxBytes         int32 // replica.fetch.max.bytes, per partition
	ResponseMaxBytes int32 // replica.fetch.response.max.bytes
	SocketTimeoutMs  int32 // replica.socket.timeout.ms
	BackoffMs        int32 // after an error (Kafka's replica.fetch.backoff.ms)
}

func (c FetcherConfig) withDefaults() FetcherConfig {
	if c.MaxWaitMs <= 0 {
		c.MaxWaitMs = 500
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 1 << 20
	}
	if c.ResponseMaxBytes <= 0 {
		c.ResponseMaxBytes = 10 << 20
	}
	if c.SocketTimeoutMs < c.MaxWaitMs+1000 {
		c.SocketTimeoutMs = max(c.MaxWaitMs+1000, 30_000)
	}
	if c.BackoffMs <= 0 {
		c.BackoffMs = 200
	}
	return c
}

// fetchTarget is one followed partition as its fetcher sees it.
type fetchTarget struct {
	p           *Partition
	leaderEpoch int32
	truncated   bool      // the log no longer diverges from the leader's
	rounds      int       // OffsetForLeaderEpoch rounds so far (KIP-279)
	retryAt     time.Time // after an error that metadata will fix, wait
}

// fetcherSet owns the replica fetchers, one per leader.
type fetcherSet struct {
	m *Manager

	mu       sync.Mutex
	byLeader map[int32]*replicaFetcher
	leaderOf map[log.TopicPartition]int32
	stopped  bool
}

func newFetcherSet(m *Manager) *fetcherSet {
	return &fetcherSet{m: m, byLeader: map[int32]*replicaFetcher{}, leaderOf: map[log.TopicPartition]int32{}}
}

// follow makes p fetched from leader at leaderEpoch; a new epoch means the
// log must be checked for divergence again.
func (fs *fetcherSet) follow(p *Partition, leader, leaderEpoch int32) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.stopped {
		return
	}
	if old, ok := fs.leaderOf[p.tp]; ok && old != leader {
		fs.removeLocked(p.tp)
	}
	f := fs.byLeader[leader]
	if f == nil {
		f = newReplicaFetcher(fs, leader)
		fs.byLeader[leader] = f
		go f.run()
	}
	fs.leaderOf[p.tp] = leader
	f.add(p, leaderEpoch)
}

func (fs *fetcherSet) remove(tp log.TopicPartition) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.removeLocked(tp)
}

func (fs *fetcherSet) removeLocked(tp log.TopicPartition) {
	leader, ok := fs.leaderOf[tp]
	if !ok {
		return
	}
	delete(fs.leaderOf, tp)
	f := fs.byLeader[leader]
	if f.remove(tp) == 0 {
		delete(fs.byLeader, leader)
		f.stop() // does not wait: the caller may hold locks the fetcher needs
	}
}

// stopAll stops every fetcher and waits for them to exit.
func (fs *fetcherSet) stopAll() {
	fs.mu.Lock()
	fs.stopped = true
	fetchers := slices.Collect(maps.Values(fs.byLeader))
	fs.byLeader, fs.leaderOf = map[int32]*replicaFetcher{}, map[log.TopicPartition]int32{}
	fs.mu.Unlock()
	for _, f := range fetchers {
		f.stop()
	}
	for _, f := range fetchers {
		<-f.done
	}
}

// replicaFetcher pulls the partitions led by one broker.
type replicaFetcher struct {
	set      *fetcherSet
	leaderID int32
	cfg      FetcherConfig
	logger   *slog.Logger
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	wake     chan struct{}

	mu      sync.Mutex
	targets map[log.TopicPartition]*fetchTarget
}

func newReplicaFetcher(fs *fetcherSet, leader int32) *replicaFetcher {
	ctx, cancel := context.WithCancel(context.Background())
	return &replicaFetcher{
		set: fs, leaderID: leader, cfg: fs.m.opts.Fetcher.withDefaults(),
		logger: fs.m.opts.Logger.With("fetcher_leader", leader),
		ctx:    ctx, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1),
		targets: map[log.TopicPartition]*fetchTarget{},
	}
}

func (f *replicaFetcher) add(p *Partition, leaderEpoch int32) {
	f.mu.Lock()
	t, ok := f.targets[p.tp]
	if !ok || t.p != p || t.leaderEpoch != leaderEpoch {
		f.targets[p.tp] = &fetchTarget{p: p, leaderEpoch: leaderEpoch}
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// remove drops a target and returns how many remain.
func (f *replicaFetcher) remove(tp log.TopicPartition) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.targets, tp)
	return len(f.targets)
}

func (f *replicaFetcher) stop() { f.cancel() }

// snapshot returns the targets ready for work now.
func (f *replicaFetcher) snapshot(now time.Time) (toTruncate, toFetch []*fetchTarget, waitFor time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	waitFor = -1
	for _, t := range f.targets {
		switch {
		case now.Before(t.retryAt):
			if d := t.retryAt.Sub(now); waitFor < 0 || d < waitFor {
				waitFor = d
			}
		case !t.truncated:
			toTruncate = append(toTruncate, t)
		default:
			toFetch = append(toFetch, t)
		}
	}
	return toTruncate, toFetch, waitFor
}

// current reports whether t is still the target for its partition (a
// leadership change may have replaced it while a request was in flight).
func (f *replicaFetcher) current(t *fetchTarget) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.targets[t.p.tp] == t
}

func (f *replicaFetcher) run() {
	defer close(f.done)
	var client LeaderClient
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	for f.ctx.Err() == nil {
		toTruncate, toFetch, waitFor := f.snapshot(f.set.m.opts.Clock.Now())
		if len(toTruncate) == 0 && len(toFetch) == 0 {
			f.idle(waitFor)
			continue
		}
		if client == nil {
			var err error
			if client, err = f.set.m.opts.DialLeader(f.ctx, f.leaderID); err != nil {
				f.logger.Debug("cannot reach the leader", "err", err)
				client = nil
				f.sleepOrWake(time.Duration(f.cfg.BackoffMs) * time.Millisecond)
				continue
			}
		}
		err := f.truncate(client, toTruncate)
		if err == nil && len(toFetch) > 0 {
			err = f.fetch(client, toFetch)
		}
		if err != nil {
			if f.ctx.Err() == nil {
				f.logger.Info("replica fetch failed; reconnecting", "err", err)
			}
			client.Close()
			client = nil
			f.sleepOrWake(time.Duration(f.cfg.BackoffMs) * time.Millisecond)
		}
	}
}

// idle waits for a new target, the first retry time, or the stop.
func (f *replicaFetcher) idle(waitFor time.Duration) {
	if waitFor < 0 {
		waitFor = time.Minute
	}
	f.sleepOrWake(waitFor)
}

func (f *replicaFetcher) sleepOrWake(d time.Duration) {
	t := f.set.m.opts.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.ctx.Done():
	case <-f.wake:
	case <-t.C():
	}
}

func (f *replicaFetcher) requestContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(f.ctx, time.Duration(f.cfg.SocketTimeoutMs)*time.Millisecond)
}

// truncate asks the leader where each target's newest epoch ends and
// truncates the log there.
func (f *replicaFetcher) truncate(client LeaderClient, targets []*fetchTarget) error {
	if len(targets) == 0 {
		return nil
	}
	queries := make([]EpochQuery, 0, len(targets))
	byTP := make(map[log.TopicPartition]*fetchTarget, len(targets))
	for _, t := range targets {
		pos := t.p.Position()
		if pos.LatestEpoch < 0 || pos.LogEndOffset == pos.LogStartOffset {
			// Nothing stamped with an epoch (an empty log): nothing can
			// diverge.
			t.truncated = true
			continue
		}
		queries = append(queries, EpochQuery{Topic: t.p.tp.Topic, Partition: t.p.tp.Partition,
			CurrentLeaderEpoch: t.leaderEpoch, LeaderEpoch: pos.LatestEpoch})
		byTP[t.p.tp] = t
	}
	if len(queries) == 0 {
		return nil
	}
	ctx, cancel := f.requestContext()
	defer cancel()
	answers, err := client.OffsetsForLeaderEpoch(ctx, f.set.m.opts.NodeID, queries)
	if err != nil {
		return err
	}
	for _, a := range answers {
		t := byTP[log.TopicPartition{Topic: a.Topic, Partition: a.Partition}]
		if t == nil || !f.current(t) {
			continue
		}
		if a.Err != nil {
			f.holdOff(t, a.Err)
			continue
		}
		final, err := t.p.TruncateForLeader(t.leaderEpoch, a.LeaderEpoch, a.EndOffset)
		if err != nil {
			f.holdOff(t, err)
			continue
		}
		// Each round that is not final drops at least one epoch from the
		// cache, so the rounds end; the bound only guards a bug.
		t.rounds++
		t.truncated = final || t.rounds >= maxTruncationRounds
	}
	return nil
}

// maxTruncationRounds bounds the OffsetForLeaderEpoch rounds for one
// leadership (one per epoch the follower held that the leader did not).
const maxTruncationRounds = 64

// fetch runs one Fetch for the targets and appends what came back.
func (f *replicaFetcher) fetch(client LeaderClient, targets []*fetchTarget) error {
	req := ReplicaFetchRequest{ReplicaID: f.set.m.opts.NodeID, MaxWaitMs: f.cfg.MaxWaitMs, MinBytes: 1, MaxBytes: f.cfg.ResponseMaxBytes}
	byTP := make(map[log.TopicPartition]*fetchTarget, len(targets))
	fetchOffsets := make(map[log.TopicPartition]int64, len(targets))
	for _, t := range targets {
		pos := t.p.Position()
		req.Partitions = append(req.Partitions, ReplicaFetchPartition{Topic: t.p.tp.Topic, Partition: t.p.tp.Partition,
			FetchOffset: pos.LogEndOffset, LogStartOffset: pos.LogStartOffset, CurrentLeaderEpoch: t.leaderEpoch, MaxBytes: f.cfg.MaxBytes})
		byTP[t.p.tp] = t
		fetchOffsets[t.p.tp] = pos.LogEndOffset
	}
	ctx, cancel := f.requestContext()
	defer cancel()
	results, err := client.Fetch(ctx, req)
	if err != nil {
		return err
	}
	// Partitions are appended side by side: each append waits for its own
	// log's fsync, and one after the other those waits would add up on
	// every round, delaying the next fetch (and so every acks=all produce
	// waiting on it).
	work := make(chan int, len(results))
	for i := range results {
		work <- i
	}
	close(work)
	var wg sync.WaitGroup
	for range min(len(results), maxConcurrentFollowerAppends) {
		wg.Go(func() {
			for i := range work {
				r := &results[i]
				tp := log.TopicPartition{Topic: r.Topic, Partition: r.Partition}
				if t := byTP[tp]; t != nil && f.current(t) {
					f.handleFetched(t, r, fetchOffsets[tp])
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// maxConcurrentFollowerAppends bounds the partitions one fetcher appends
// at once.
const maxConcurrentFollowerAppends = 16

// handleFetched appends one partition's records, or reacts to its error.
func (f *replicaFetcher) handleFetched(t *fetchTarget, r *ReplicaFetchResult, fetchOffset int64) {
	switch {
	case r.Err == nil:
		err := t.p.AppendAsFollower(r.Records, t.leaderEpoch, r.HighWatermark, r.LogStartOffset)
		if errors.Is(err, log.ErrOffsetsOutOfOrder) {
			t.truncated, t.rounds = false, 0 // our log moved under us: check divergence again
		} else if err != nil {
			f.holdOff(t, err)
		}
	case errors.Is(r.Err, log.ErrOffsetOutOfRange) && r.LogStartOffset >= 0 && fetchOffset < r.LogStartOffset:
		// The leader deleted what we would fetch next (retention,
		// DeleteRecords): start again at its log start.
		if err := t.p.TruncateFullyAndStartAt(t.leaderEpoch, r.LogStartOffset); err != nil {
			f.holdOff(t, err)
		}
	case errors.Is(r.Err, log.ErrOffsetOutOfRange):
		// We are ahead of the leader: some of our records diverge.
		t.truncated, t.rounds = false, 0
	default:
		f.holdOff(t, r.Err)
	}
}

// holdOff pauses a target after an error that the next metadata image
// (a new leader or epoch) or a retry will resolve.
func (f *replicaFetcher) holdOff(t *fetchTarget, err error) {
	level := slog.LevelInfo
	if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrUnknownLeaderEpoch) || errors.Is(err, ErrFencedLeaderEpoch) || errors.Is(err, ErrNotFollower) {
		level = slog.LevelDebug // leadership is moving; metadata will catch up
	}
	f.logger.Log(context.Background(), level, "replica fetch of a partition paused", "partition", t.p.tp.String(), "err", err)
	t.retryAt = f.set.m.opts.Clock.Now().Add(time.Duration(f.cfg.BackoffMs) * time.Millisecond)
	if errors.Is(err, ErrFencedLeaderEpoch) || errors.Is(err, ErrUnknownLeaderEpoch) {
		t.truncated, t.rounds = false, 0
	}
}
