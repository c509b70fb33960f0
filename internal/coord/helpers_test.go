package coord

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/vfs"
)

// Tiny helpers, no framework (CONTRIBUTING.md).

func require(t testing.TB, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func requireErrorIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

// eventually polls cond for up to 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

const testNode = 1

// fixture is one broker's partition manager on a real directory, with a
// metadata image the test builds, and a Coordinator on top. The offsets
// topic is created by the coordinator's hook, as the node does through the
// controller.
type fixture struct {
	t     testing.TB
	fs    vfs.FS
	dir   string
	clock clock.Clock
	cfg   Config
	// cleaner configures the log manager's cleaner threads, which a test
	// runs itself (log.Manager.RunCleaner).
	cleaner log.CleanerConfig

	logs  *log.Manager
	mgr   *partition.Manager
	coord *Coordinator

	mu      sync.Mutex
	img     *metadata.Image
	topicID byte
	creates int
}

func newFixture(t testing.TB, clk clock.Clock, cfg Config) *fixture {
	f := &fixture{t: t, fs: vfs.OS(), dir: t.TempDir(), clock: clk, cfg: cfg, img: metadata.EmptyImage()}
	f.open()
	return f
}

func (f *fixture) open() {
	f.t.Helper()
	lc := log.DefaultConfig()
	lc.SegmentIndexBytes = 65536
	logs, err := log.OpenManager(log.ManagerOptions{FS: f.fs, Dir: f.dir, Config: lc, Clock: f.clock, Logger: quietLogger, Cleaner: f.cleaner})
	noErr(f.t, err)
	mgr, err := partition.NewManager(partition.Options{NodeID: testNode, Logs: logs, FS: f.fs, Dir: f.dir, Clock: f.clock,
		Logger: quietLogger, Image: f.image, TopicDefaults: func() map[string]string {
			return map[string]string{"log.index.size.max.bytes": "65536"}
		}})
	noErr(f.t, err)
	noErr(f.t, mgr.Refresh())
	c, err := Start(Options{NodeID: testNode, Partitions: mgr, Image: f.image, CreateOffsetsTopic: f.createOffsetsTopic,
		Clock: f.clock, Logger: quietLogger, Config: f.cfg})
	noErr(f.t, err)
	f.logs, f.mgr, f.coord = logs, mgr, c
	c.Refresh()
	f.t.Cleanup(f.close)
}

func (f *fixture) close() {
	if f.coord == nil {
		return
	}
	f.coord.Stop()
	f.mgr.Close()
	f.logs.Close()
	f.coord = nil
}

// restart stops everything and opens it again on the same directory.
func (f *fixture) restart() {
	f.t.Helper()
	f.close()
	f.open()
}

func (f *fixture) image() *metadata.Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.img
}

// apply replays records into the next image and refreshes the managers,
// as the node does on every metadata change.
func (f *fixture) apply(records ...metadata.Record) {
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
	noErr(f.t, f.mgr.Refresh())
	f.coord.Refresh()
}

func (f *fixture) createTopic(name string, partitions int, configs map[string]string) {
	f.t.Helper()
	f.mu.Lock()
	f.topicID++
	id := metadata.UUID{0: 0xCC, 15: f.topicID}
	f.mu.Unlock()
	records := []metadata.Record{&metadata.Topic{Name: name, ID: id}}
	for i := range partitions {
		records = append(records, &metadata.Partition{TopicID: id, Partition: int32(i), Replicas: []int32{testNode},
			ISR: []int32{testNode}, Leader: testNode})
	}
	for k, v := range configs {
		records = append(records, &metadata.Config{ResourceType: metadata.ConfigResourceTopic, ResourceName: name, Name: k, Value: v})
	}
	f.apply(records...)
}

func (f *fixture) createOffsetsTopic(context.Context) error {
	f.mu.Lock()
	f.creates++
	_, exists := f.img.Topic(OffsetsTopic)
	f.mu.Unlock()
	if !exists {
		f.createTopic(OffsetsTopic, int(f.coord.cfg.OffsetsTopicNumPartitions), OffsetsTopicConfigs)
	}
	return nil
}

// ready creates __consumer_offsets through FindCoordinator and waits until
// groupID's shard answers.
func (f *fixture) ready(groupID string) {
	f.t.Helper()
	eventually(f.t, "the coordinator of "+groupID, func() bool {
		node, err := f.coord.FindCoordinator(context.Background(), groupID)
		return err == nil && node == testNode
	})
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func consumerJoin(group, member string) JoinRequest {
	return JoinRequest{GroupID: group, MemberID: member, ProtocolType: "consumer",
		Protocols:        []Protocol{{Name: "range", Metadata: subscription("events")}},
		SessionTimeoutMs: 10000, RebalanceTimeoutMs: 10000, ClientID: "test", ClientHost: "/127.0.0.1"}
}

// subscription is a ConsumerProtocolSubscription v0 for topics.
func subscription(topics ...string) []byte {
	b := []byte{0, 0, 0, 0, 0, byte(len(topics))}
	for _, t := range topics {
		b = append(b, 0, byte(len(t)))
		b = append(b, t...)
	}
	return append(b, 0xff, 0xff, 0xff, 0xff) // null user data
}

func commit(group string, gen int32, member, topic string, offsets map[int32]int64) CommitRequest {
	req := CommitRequest{GroupID: group, GenerationID: gen, MemberID: member, RetentionTimeMs: -1}
	ct := CommitTopic{Name: topic}
	for p, o := range offsets {
		ct.Partitions = append(ct.Partitions, CommitPartition{Partition: p, Offset: o, LeaderEpoch: -1})
	}
	req.Topics = []CommitTopic{ct}
	return req
}
