package partition

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/record"
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

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

const testNode = 1

// startTime is the manual clock's start: batches are stamped near it.
var startTime = time.UnixMilli(1_700_000_000_000)

func uuid(n byte) metadata.UUID { return metadata.UUID{0: 0xBB, 15: n} }

// fixture is a broker's partition manager on a MemFS with a manual clock,
// fed images the test builds with metadata.Delta.
type fixture struct {
	t     testing.TB
	fs    vfs.FS
	clock *clock.Manual
	dir   string
	logs  *log.Manager
	mgr   *Manager
	// journal opens the log manager with log.flush.journal on.
	journal bool

	mu       sync.Mutex
	img      *metadata.Image
	defaults map[string]string
}

func newFixture(t testing.TB) *fixture { return newFixtureJournal(t, false) }

// newFixtureJournal is newFixture with log.flush.journal set as asked.
func newFixtureJournal(t testing.TB, journal bool) *fixture {
	f := &fixture{t: t, fs: vfs.NewMem(), clock: clock.NewManual(startTime), dir: "/data", img: metadata.EmptyImage(),
		// Small index files: MemFS zero-fills the default 10 MiB ones.
		defaults: map[string]string{"log.index.size.max.bytes": "65536"}, journal: journal}
	f.open(f.fs)
	return f
}

// open (re)opens the log manager and the partition manager on fsys.
func (f *fixture) open(fsys vfs.FS) {
	f.t.Helper()
	f.fs = fsys
	cfg := log.DefaultConfig()
	cfg.SegmentIndexBytes = 65536
	logs, err := log.OpenManager(log.ManagerOptions{FS: fsys, Dir: f.dir, Config: cfg, Clock: f.clock, Logger: quietLogger,
		Journal: f.journal, JournalFileBytes: 1 << 20})
	noErr(f.t, err)
	f.logs = logs
	mgr, err := NewManager(Options{NodeID: testNode, Logs: logs, FS: fsys, Dir: f.dir, Clock: f.clock, Logger: quietLogger,
		Image: f.image, TopicDefaults: f.topicDefaults})
	noErr(f.t, err)
	f.mgr = mgr
	f.t.Cleanup(func() {
		mgr.Close()
		logs.Close()
	})
}

// restart closes both managers cleanly and opens them again.
func (f *fixture) restart() {
	f.t.Helper()
	noErr(f.t, f.mgr.Close())
	noErr(f.t, f.logs.Close())
	f.open(f.fs)
}

func (f *fixture) image() *metadata.Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.img
}

func (f *fixture) topicDefaults() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.defaults)
}

func (f *fixture) setDefaults(d map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.defaults = d
}

// apply replays records into the next image.
func (f *fixture) apply(records ...metadata.Record) {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	d := metadata.NewDelta(f.img)
	for i, r := range records {
		if err := d.Replay(r); err != nil {
			f.t.Fatalf("record %d (%T %+v): %v", i, r, r, err)
		}
	}
	f.img = d.Apply(f.img.Offset() + int64(len(records)))
}

// createTopic adds a topic with one partition per replica list, led by
// the first replica, and its configs.
func (f *fixture) createTopic(name string, id byte, configs map[string]string, replicas ...[]int32) {
	f.t.Helper()
	records := []metadata.Record{&metadata.Topic{Name: name, ID: uuid(id)}}
	for i, r := range replicas {
		records = append(records, &metadata.Partition{TopicID: uuid(id), Partition: int32(i), Replicas: r, ISR: r, Leader: r[0]})
	}
	for k, v := range configs {
		records = append(records, &metadata.Config{ResourceType: metadata.ConfigResourceTopic, ResourceName: name, Name: k, Value: v})
	}
	f.apply(records...)
}

func (f *fixture) partition(topic string, p int32) *Partition {
	f.t.Helper()
	part, err := f.mgr.Partition(topic, p)
	noErr(f.t, err)
	return part
}

func (f *fixture) nowMs() int64 { return f.clock.Now().UnixMilli() }

// batchSpec describes a test batch.
type batchSpec struct {
	records       int
	valueSize     int
	timestampMs   int64 // first timestamp; 0 means the clock's now
	producerID    int64 // -1: not idempotent
	producerEpoch int16
	sequence      int32
	transactional bool
	tag           string
}

func (f *fixture) batch(s batchSpec) []byte {
	f.t.Helper()
	if s.records == 0 {
		s.records = 1
	}
	if s.timestampMs == 0 {
		s.timestampMs = f.nowMs()
	}
	recs := make([]record.Record, s.records)
	for i := range recs {
		v := make([]byte, max(s.valueSize, 16))
		copy(v, fmt.Sprintf("%s/%d", s.tag, i))
		recs[i] = record.Record{Value: v}
	}
	b, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: s.producerID, ProducerEpoch: s.producerEpoch,
		BaseSequence: s.sequence, FirstTimestamp: s.timestampMs, Transactional: s.transactional}, recs)
	noErr(f.t, err)
	return b
}

func plain(n int) batchSpec { return batchSpec{records: n, producerID: -1} }

func idem(pid int64, epoch int16, seq int32, n int) batchSpec {
	return batchSpec{records: n, producerID: pid, producerEpoch: epoch, sequence: seq}
}

// readAll returns the headers of the batches readable from offset.
func readAll(t testing.TB, p *Partition, offset int64) []record.Header {
	t.Helper()
	res, err := p.Read(offset, ReadOptions{MaxBytes: 1 << 30, CurrentLeaderEpoch: -1})
	noErr(t, err)
	defer res.Records.Release()
	data, err := res.Records.AppendTo(nil)
	noErr(t, err)
	var out []record.Header
	for rest := data; len(rest) > 0; {
		_, next, h, err := record.NextBatch(rest)
		noErr(t, err)
		out = append(out, h)
		rest = next
	}
	return out
}

func configRecord(topic, key, value string) *metadata.Config {
	return &metadata.Config{ResourceType: metadata.ConfigResourceTopic, ResourceName: topic, Name: key, Value: value}
}
