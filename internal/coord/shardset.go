package coord

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/metadata"
)

// shardBase is what every coordinator shard has, whatever its state
// machine: the partition it owns, the leader epoch it was loaded under,
// whether its replay finished, and how it ends.
type shardBase struct {
	partition   int32
	leaderEpoch int32
	loaded      atomic.Bool
	stop        chan struct{}         // closed by unload
	done        chan struct{}         // closed when the owner goroutine returned
	exit        atomic.Pointer[error] // why the shard ended, for late callers
}

func newShardBase(partition, leaderEpoch int32) shardBase {
	return shardBase{partition: partition, leaderEpoch: leaderEpoch, stop: make(chan struct{}), done: make(chan struct{})}
}

func (b *shardBase) base() *shardBase { return b }

// unload asks the owner to stop; callers get err.
func (b *shardBase) unload(err error) {
	b.exit.CompareAndSwap(nil, &err)
	close(b.stop)
}

func (b *shardBase) exitErr() error {
	if e := b.exit.Load(); e != nil {
		return *e
	}
	return ErrNotCoordinator
}

// coordShard is a shard a shardSet runs: any struct embedding shardBase.
type coordShard interface {
	base() *shardBase
}

// shardSet is the runtime the group, transaction and share-state
// coordinators share: one internal topic, split into shards by its
// partitions, one shard (and owner goroutine) per partition this node
// leads. It creates the topic on first use, loads a shard when leadership
// (or a new leader epoch) arrives and unloads it when it leaves, and
// routes a key to its loaded shard. What a shard does with its partition
// is the coordinator's: newShard starts its goroutine (counted in wg).
//
// Locks: mu guards shards and stopped; it is never held while waiting on a
// shard.
type shardSet[S coordShard] struct {
	topic  string
	nodeID int32
	image  func() *metadata.Image
	create func(ctx context.Context) error // creates topic; "exists" is nil
	clock  clock.Clock
	logger *slog.Logger
	// newShard builds and starts the shard of a partition led here in
	// leaderEpoch; called with mu held.
	newShard func(partition, leaderEpoch int32) S

	ctx    context.Context // cancelled by stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	creating atomic.Bool // a create call is under way

	mu      sync.Mutex
	shards  map[int32]S
	stopped bool
	// appliedOffset is the metadata offset of the newest image refresh
	// applied: an older one read before it must not be applied after it.
	appliedOffset int64
}

func newShardSet[S coordShard](topic string, nodeID int32, image func() *metadata.Image, create func(context.Context) error,
	clk clock.Clock, logger *slog.Logger) *shardSet[S] {
	ctx, cancel := context.WithCancel(context.Background())
	return &shardSet[S]{topic: topic, nodeID: nodeID, image: image, create: create, clock: clk, logger: logger,
		ctx: ctx, cancel: cancel, shards: map[int32]S{}, appliedOffset: -1}
}

// stop unloads every shard with ErrCoordinatorNotAvailable and waits for
// the goroutines the set counted. Idempotent.
func (ss *shardSet[S]) stop() {
	ss.mu.Lock()
	if ss.stopped {
		ss.mu.Unlock()
		return
	}
	ss.stopped = true
	for p, s := range ss.shards {
		s.base().unload(ErrCoordinatorNotAvailable)
		delete(ss.shards, p)
	}
	ss.mu.Unlock()
	ss.cancel()
	ss.wg.Wait()
}

// goLocked runs f in a goroutine counted in wg (mu held, set not stopped).
func (ss *shardSet[S]) goLocked(f func()) {
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		f()
	}()
}

func (ss *shardSet[S]) topicImage() (*metadata.TopicImage, bool) {
	img := ss.image()
	if img == nil {
		return nil, false
	}
	return img.Topic(ss.topic)
}

// refresh loads a shard for each partition this node leads and unloads
// the others. A new leader epoch reloads the shard: leadership may have
// gone elsewhere and come back between two images, and the records
// another leader appended meanwhile are only known by replaying.
//
// Refreshes run at once (the node's image loop, a request that found its
// shard missing, WaitLoaded) and read the image before taking mu, so one
// may get mu after another that read a newer image. Applying its older
// image then would unload a shard this node leads, or reload one under an
// older leader epoch: a transaction shard's markers would carry that
// epoch as their coordinator epoch, which partitions that saw the newer
// one refuse, so its transactions would never complete. Images only move
// forward here.
func (ss *shardSet[S]) refresh() {
	img := ss.image()
	if img == nil {
		img = metadata.EmptyImage()
	}
	want := map[int32]int32{} // partition -> leader epoch
	if t, ok := img.Topic(ss.topic); ok {
		for p, pi := range t.Partitions {
			if pi != nil && pi.Leader == ss.nodeID {
				want[int32(p)] = pi.LeaderEpoch
			}
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.stopped || img.Offset() < ss.appliedOffset {
		return
	}
	ss.appliedOffset = img.Offset()
	for p, s := range ss.shards {
		if epoch, ok := want[p]; !ok || epoch != s.base().leaderEpoch {
			s.base().unload(ErrNotCoordinator)
			delete(ss.shards, p)
		}
	}
	for p, epoch := range want {
		if _, ok := ss.shards[p]; !ok {
			ss.shards[p] = ss.newShard(p, epoch)
		}
	}
}

// waitLoaded refreshes, then waits until every shard has replayed its
// partition (a failed load drops its shard, which is not waited for).
func (ss *shardSet[S]) waitLoaded(ctx context.Context) error {
	ss.refresh()
	for !ss.allLoaded() {
		t := ss.clock.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("loading %s shards: %w", ss.topic, ctx.Err())
		case <-t.C():
		}
	}
	return nil
}

func (ss *shardSet[S]) allLoaded() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range ss.shards {
		if !s.base().loaded.Load() {
			return false
		}
	}
	return true
}

// all returns the shards, loaded or not.
func (ss *shardSet[S]) all() []S {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]S, 0, len(ss.shards))
	for _, s := range ss.shards {
		out = append(out, s)
	}
	return out
}

// get returns the shard of a partition, loaded or not.
func (ss *shardSet[S]) get(partition int32) (S, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.shards[partition]
	return s, ok
}

// ensureTopic starts creating the topic unless a creation is under way.
func (ss *shardSet[S]) ensureTopic() {
	if !ss.creating.CompareAndSwap(false, true) {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.stopped {
		ss.creating.Store(false)
		return
	}
	ss.goLocked(func() {
		defer ss.creating.Store(false)
		ctx, cancel := context.WithTimeout(ss.ctx, createTopicTimeout)
		defer cancel()
		if err := ss.create(ctx); err != nil {
			ss.logger.Warn("creating "+ss.topic+" failed", "err", err)
			return
		}
		ss.logger.Info("created " + ss.topic)
	})
}

// leaderOf is the partition of key and its leader; a missing topic is
// created in the background (ErrCoordinatorNotAvailable meanwhile).
func (ss *shardSet[S]) leaderOf(key string) (partition, leader int32, err error) {
	t, ok := ss.topicImage()
	if !ok {
		ss.ensureTopic()
		return -1, -1, ErrCoordinatorNotAvailable
	}
	p := PartitionFor(key, int32(len(t.Partitions)))
	pi := t.Partitions[p]
	if pi == nil || pi.Leader < 0 {
		return -1, -1, ErrCoordinatorNotAvailable
	}
	return p, pi.Leader, nil
}

// route finds the loaded shard of key, or the coordinator error.
func (ss *shardSet[S]) route(key string) (S, error) {
	var none S
	p, leader, err := ss.leaderOf(key)
	if err != nil {
		return none, err
	}
	if leader != ss.nodeID {
		return none, ErrNotCoordinator
	}
	ss.mu.Lock()
	s, ok := ss.shards[p]
	stopped := ss.stopped
	ss.mu.Unlock()
	switch {
	case stopped:
		return none, ErrCoordinatorNotAvailable
	case !ok:
		// The node has not refreshed since leadership came here (or a
		// failed shard dropped itself): load it now.
		ss.refresh()
		return none, ErrCoordinatorLoadInProgress
	case !s.base().loaded.Load():
		return none, ErrCoordinatorLoadInProgress
	}
	return s, nil
}

// findCoordinator is the node leading key's partition. When that is this
// node, its shard must be loaded too: until then the answer is
// ErrCoordinatorNotAvailable, so clients look again.
func (ss *shardSet[S]) findCoordinator(key string) (int32, error) {
	_, leader, err := ss.leaderOf(key)
	if err != nil {
		return -1, err
	}
	if leader == ss.nodeID {
		if _, err := ss.route(key); err != nil {
			return -1, ErrCoordinatorNotAvailable
		}
	}
	return leader, nil
}

// drop removes a shard that ended by itself (a failed load or append),
// if it is still the partition's; err is what its callers get.
func (ss *shardSet[S]) drop(s S, err error) {
	b := s.base()
	b.exit.CompareAndSwap(nil, &err)
	ss.mu.Lock()
	if cur, ok := ss.shards[b.partition]; ok && cur.base() == b {
		delete(ss.shards, b.partition)
	}
	ss.mu.Unlock()
}
