package share

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// fixture is one broker's Coordinator over a real partition manager in
// t.TempDir(): __consumer_offsets with one partition (every group is
// coordinated here) and the topics a test creates, all led by node 1
// alone, and a persister in memory that a test can hold up.
type fixture struct {
	t         testing.TB
	logs      *log.Manager
	mgr       *partition.Manager
	c         *Coordinator
	persister *memPersister

	mu      sync.Mutex
	img     *metadata.Image
	topicID byte
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, img: metadata.EmptyImage(), persister: &memPersister{states: map[stateKey]sharegroup.PartitionState{}}}
	logs, err := log.OpenManager(log.ManagerOptions{FS: vfs.OS(), Dir: dir, Config: log.DefaultConfig(), Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := partition.NewManager(partition.Options{NodeID: 1, Logs: logs, FS: vfs.OS(), Dir: dir, Logger: quietLogger, Image: f.image})
	if err != nil {
		logs.Close()
		t.Fatal(err)
	}
	f.logs, f.mgr = logs, mgr
	f.c = New(Options{
		Config: Config{
			Group:       sharegroup.GroupConfig{SessionTimeoutMs: 45_000, HeartbeatIntervalMs: 5_000, MaxSize: 100},
			Partition:   sharegroup.PartitionConfig{LockDurationMs: 30_000, DeliveryCountLimit: 5, MaxRecordLocks: 2_000},
			MaxSessions: 100,
		},
		Persister: f.persister, Image: f.image, Partitions: mgr, Logger: quietLogger,
	})
	t.Cleanup(func() {
		f.persister.release()
		f.c.Close()
		mgr.Close()
		logs.Close()
	})
	f.createTopic(coord.OffsetsTopic, 1)
	return f
}

func (f *fixture) image() *metadata.Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.img
}

func (f *fixture) createTopic(name string, partitions int) {
	f.t.Helper()
	f.mu.Lock()
	f.topicID++
	id := metadata.UUID{0: 0x5e, 15: f.topicID}
	f.mu.Unlock()
	records := []metadata.Record{&metadata.Topic{Name: name, ID: id}}
	for i := range partitions {
		records = append(records, &metadata.Partition{TopicID: id, Partition: int32(i), Replicas: []int32{1}, ISR: []int32{1}, Leader: 1})
	}
	f.apply(records)
}

// addPartitions grows a topic to partitions, as CreatePartitions does.
func (f *fixture) addPartitions(name string, partitions int) {
	f.t.Helper()
	t, ok := f.image().Topic(name)
	if !ok {
		f.t.Fatalf("no topic %q", name)
	}
	var records []metadata.Record
	for i := len(t.Partitions); i < partitions; i++ {
		records = append(records, &metadata.Partition{TopicID: t.ID, Partition: int32(i), Replicas: []int32{1}, ISR: []int32{1}, Leader: 1})
	}
	f.apply(records)
}

// apply publishes the image the records make, and has the partition
// manager follow it.
func (f *fixture) apply(records []metadata.Record) {
	f.t.Helper()
	f.mu.Lock()
	d := metadata.NewDelta(f.img)
	for _, r := range records {
		if err := d.Replay(r); err != nil {
			f.mu.Unlock()
			f.t.Fatalf("replay %T: %v", r, err)
		}
	}
	f.img = d.Apply(f.img.Offset() + int64(len(records)))
	f.mu.Unlock()
	if err := f.mgr.Refresh(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) heartbeat(group string, hb sharegroup.Heartbeat) sharegroup.HeartbeatResult {
	f.t.Helper()
	res, err := f.c.Heartbeat(group, hb, f.image())
	if err != nil {
		f.t.Fatalf("heartbeat %+v of %q: %v", hb, group, err)
	}
	return res
}

// produce appends n records to a partition, with acks=all.
func (f *fixture) produce(topic string, partition int32, n int) {
	f.t.Helper()
	part, err := f.mgr.Partition(topic, partition)
	if err != nil {
		f.t.Fatal(err)
	}
	records := make([]record.Record, n)
	for i := range records {
		records[i] = record.Record{Value: []byte("v")}
	}
	batch, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, records)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := part.AppendAll(context.Background(), batch); err != nil {
		f.t.Fatal(err)
	}
}

// fetch is a ShareFetch of member of group from t-0 in sessionEpoch,
// without waiting; it returns the records acquired.
func (f *fixture) fetch(group, member string, sessionEpoch int32) int64 {
	f.t.Helper()
	res, err := f.c.Fetch(context.Background(), FetchRequest{GroupID: group, MemberID: member, SessionEpoch: sessionEpoch,
		Partitions: []TopicPartition{{"t", 0}}, MaxRecords: 100, MaxBytes: 1 << 20})
	if err != nil {
		f.t.Fatalf("fetch of %s/%s: %v", group, member, err)
	}
	var n int64
	for _, r := range res {
		if r.Err != nil {
			f.t.Fatalf("fetch of %s/%s from %v: %v", group, member, r.TopicPartition, r.Err)
		}
		for _, a := range r.Acquired {
			n += a.LastOffset - a.FirstOffset + 1
		}
	}
	return n
}

type stateKey struct {
	group, topic string
	partition    int32
}

// memPersister keeps share partitions' state in memory, as the share
// coordinator does: only InitializeState creates it (counted in
// initialized), and it fences an initialization in a state epoch not
// above the stored one. hold makes every call wait, each telling entered,
// until release.
type memPersister struct {
	mu          sync.Mutex
	states      map[stateKey]sharegroup.PartitionState
	initialized int
	held        chan struct{}
	entered     chan struct{}
}

// hold makes the persister's calls wait from now on; entered gets one
// value per call that waits.
func (p *memPersister) hold() (entered <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held, p.entered = make(chan struct{}), make(chan struct{}, 64)
	return p.entered
}

// release lets the waiting calls, and those after them, through.
func (p *memPersister) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held != nil {
		close(p.held)
		p.held = nil
	}
}

func (p *memPersister) wait(ctx context.Context) error {
	p.mu.Lock()
	held, entered := p.held, p.entered
	p.mu.Unlock()
	if held == nil {
		return nil
	}
	entered <- struct{}{}
	select {
	case <-held:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// state is a share partition's stored state.
func (p *memPersister) state(group, topic string, partition int32) sharegroup.PartitionState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.states[stateKey{group, topic, partition}]
}

// stateOf is a share partition's stored state and whether there is one.
func (p *memPersister) stateOf(group, topic string, partition int32) (sharegroup.PartitionState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.states[stateKey{group, topic, partition}]
	return st, ok
}

func (p *memPersister) ReadState(ctx context.Context, groupID, topic string, partition, _ int32) (sharegroup.PartitionState, bool, error) {
	if err := p.wait(ctx); err != nil {
		return sharegroup.PartitionState{}, false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.states[stateKey{groupID, topic, partition}]
	if !ok {
		return sharegroup.PartitionState{}, false, fmt.Errorf("%s-%d of %q: %w", topic, partition, groupID, ErrStateUninitialized)
	}
	return st, st.StartOffset >= 0, nil
}

func (p *memPersister) WriteState(ctx context.Context, groupID, topic string, partition, _ int32, st sharegroup.PartitionState) error {
	if err := p.wait(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	key := stateKey{groupID, topic, partition}
	if _, ok := p.states[key]; !ok {
		return fmt.Errorf("%s-%d of %q: %w", topic, partition, groupID, ErrStateUninitialized)
	}
	p.states[key] = st
	return nil
}

func (p *memPersister) DeleteState(ctx context.Context, groupID, topic string, partition int32) error {
	if err := p.wait(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.states, stateKey{groupID, topic, partition})
	return nil
}

func (p *memPersister) ReadStateSummary(ctx context.Context, groupID, topic string, partition int32) (StateSummary, bool, error) {
	if err := p.wait(ctx); err != nil {
		return StateSummary{}, false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.states[stateKey{groupID, topic, partition}]
	if !ok || st.StartOffset < 0 {
		return StateSummary{StateEpoch: st.StateEpoch, LeaderEpoch: -1, StartOffset: -1}, false, nil
	}
	return StateSummary{StateEpoch: st.StateEpoch, LeaderEpoch: -1, StartOffset: st.StartOffset}, true, nil
}

func (p *memPersister) InitializeState(ctx context.Context, groupID, topic string, index, stateEpoch int32, startOffset int64) error {
	if err := p.wait(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	key := stateKey{groupID, topic, index}
	if st, ok := p.states[key]; ok && stateEpoch <= st.StateEpoch {
		return fmt.Errorf("initialize in state epoch %d, stored %d: %w", stateEpoch, st.StateEpoch, partition.ErrNotLeader)
	}
	p.states[key] = sharegroup.PartitionState{StateEpoch: stateEpoch, StartOffset: startOffset}
	p.initialized++
	return nil
}

// within runs fn and says whether it returned within d; fn goes on in the
// background otherwise (the test's cleanup releases what it waits on).
func within(d time.Duration, fn func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
