package partition

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/replica"
	"github.com/sluicelog/sluice/internal/vfs"
)

// A cluster of brokers in one process for the replication tests: each
// broker has its own MemFS, log manager and partition Manager; they share
// the metadata image, a manual clock, and an in-memory network whose
// LeaderClient (loopback) calls the leader's Partition methods directly,
// converting errors as internal/peer and internal/api do.

// linkState is the state of the network from a follower to a leader.
type linkState int

const (
	linkUp         linkState = iota
	linkDown                 // every request fails as a broken connection
	linkEpochsOnly           // OffsetsForLeaderEpoch passes, Fetch fails
)

var errNetwork = errors.New("test network: connection refused")

type cluster struct {
	t     *testing.T
	clock *clock.Manual
	mk    *fixture // builds batches stamped with the cluster's clock

	// linkMu makes a link change wait for the requests that passed
	// their link check and are still reading the leader: a request
	// checked just before a cut would otherwise read records appended
	// just after it, which the tests take for records the cut kept from
	// the follower. A request holds it shared from its check to the end
	// of its read, never while parked (loopback.Fetch).
	linkMu sync.RWMutex

	mu      sync.Mutex
	img     *metadata.Image
	brokers map[int32]*broker
	links   map[[2]int32]linkState // [follower, leader]
	queries map[int32][]EpochQuery // OffsetsForLeaderEpoch queries by follower
}

type broker struct {
	c          *cluster
	id         int32
	defaults   map[string]string
	alterISR   func(ISRProposal) error
	isrChanged func(shrunk bool)

	// Written by the test goroutine only, under c.mu; fetchers of other
	// brokers read mgr under c.mu.
	fs   vfs.FS
	logs *log.Manager
	mgr  *Manager
}

type brokerOpts struct {
	defaults   map[string]string // broker config defaults on top of the test ones
	alterISR   func(ISRProposal) error
	isrChanged func(shrunk bool)
}

func newCluster(t *testing.T) *cluster {
	clk := clock.NewManual(startTime)
	return &cluster{t: t, clock: clk, mk: &fixture{t: t, clock: clk}, img: metadata.EmptyImage(),
		brokers: map[int32]*broker{}, links: map[[2]int32]linkState{}, queries: map[int32][]EpochQuery{}}
}

// addBroker starts a broker on an empty MemFS.
func (c *cluster) addBroker(id int32, o brokerOpts) *broker {
	c.t.Helper()
	defaults := map[string]string{"log.index.size.max.bytes": "65536"}
	maps.Copy(defaults, o.defaults)
	b := &broker{c: c, id: id, defaults: defaults, alterISR: o.alterISR, isrChanged: o.isrChanged}
	c.mu.Lock()
	c.brokers[id] = b
	c.mu.Unlock()
	b.open(vfs.NewMem())
	return b
}

// open (re)opens the broker's log and partition managers on fsys and
// brings them up to the current image.
func (b *broker) open(fsys vfs.FS) {
	t := b.c.t
	t.Helper()
	cfg := log.DefaultConfig()
	cfg.SegmentIndexBytes = 65536
	logs, err := log.OpenManager(log.ManagerOptions{FS: fsys, Dir: "/data", Config: cfg, Clock: b.c.clock, Logger: quietLogger})
	noErr(t, err)
	mgr, err := NewManager(Options{NodeID: b.id, Logs: logs, FS: fsys, Dir: "/data", Clock: b.c.clock, Logger: quietLogger,
		Image: b.c.image, TopicDefaults: func() map[string]string { return maps.Clone(b.defaults) },
		AlterISR: b.alterISR, ISRChanged: b.isrChanged,
		DialLeader: func(_ context.Context, leader int32) (LeaderClient, error) {
			return &loopback{c: b.c, from: b.id, to: leader}, nil
		},
		// Fetcher backoffs run on the manual clock, which eventually
		// advances; parked fetches wait in real time (loopback.Fetch).
		Fetcher: FetcherConfig{MaxWaitMs: 20, BackoffMs: 50}})
	noErr(t, err)
	b.c.mu.Lock()
	b.fs, b.logs, b.mgr = fsys, logs, mgr
	b.c.mu.Unlock()
	t.Cleanup(func() {
		mgr.Close()
		logs.Close()
	})
	noErr(t, mgr.Refresh())
}

// close stops the broker's managers cleanly (the fetchers exit first).
func (b *broker) close() {
	b.c.t.Helper()
	noErr(b.c.t, b.mgr.Close())
	noErr(b.c.t, b.logs.Close())
}

func (c *cluster) image() *metadata.Image {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.img
}

// apply replays records into the next image and refreshes every broker,
// as a node does on every image change.
func (c *cluster) apply(records ...metadata.Record) {
	c.t.Helper()
	c.mu.Lock()
	d := metadata.NewDelta(c.img)
	for i, r := range records {
		if err := d.Replay(r); err != nil {
			c.mu.Unlock()
			c.t.Fatalf("record %d (%T %+v): %v", i, r, r, err)
		}
	}
	c.img = d.Apply(c.img.Offset() + int64(len(records)))
	ids := slices.Sorted(maps.Keys(c.brokers))
	mgrs := make([]*Manager, len(ids))
	for i, id := range ids {
		mgrs[i] = c.brokers[id].mgr
	}
	c.mu.Unlock()
	for _, m := range mgrs {
		noErr(c.t, m.Refresh())
	}
}

// createTopic adds a topic of one partition per replica list, each led by
// its first replica with every replica in the ISR.
func (c *cluster) createTopic(name string, id byte, configs map[string]string, replicas ...[]int32) {
	c.t.Helper()
	records := []metadata.Record{&metadata.Topic{Name: name, ID: uuid(id)}}
	// Every replica is a registered, unfenced broker: only those may join
	// an ISR.
	registered := map[int32]bool{}
	for _, r := range replicas {
		for _, b := range r {
			if _, ok := c.image().Broker(b); !ok && !registered[b] {
				registered[b] = true
				records = append(records, &metadata.RegisterBroker{BrokerID: b, BrokerEpoch: int64(b)})
			}
		}
	}
	for i, r := range replicas {
		records = append(records, &metadata.Partition{TopicID: uuid(id), Partition: int32(i), Replicas: r, ISR: r, Leader: r[0]})
	}
	for k, v := range configs {
		records = append(records, configRecord(name, k, v))
	}
	c.apply(records...)
}

// change applies a PartitionChange to partition 0 of topic id 1.
func (c *cluster) change(leader int32, isr ...int32) {
	c.t.Helper()
	c.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: leader, ISR: isr})
}

func (c *cluster) batch(s batchSpec) []byte { return c.mk.batch(s) }

// setLink sets the network from follower to leader, once the requests
// being served over it are done.
func (c *cluster) setLink(follower, leader int32, s linkState) {
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.links[[2]int32{follower, leader}] = s
}

// cut breaks the network between a and b both ways.
func (c *cluster) cut(a, b int32) {
	c.setLink(a, b, linkDown)
	c.setLink(b, a, linkDown)
}

func (c *cluster) epochQueries(follower int32) []EpochQuery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.queries[follower])
}

// eventually polls cond until it returns nil, advancing the manual clock
// between polls so fetcher backoffs expire; it fails the test with cond's
// last complaint after a real-time deadline.
func (c *cluster) eventually(cond func() error) {
	c.t.Helper()
	eventuallyTick(c.t, func() { c.clock.Advance(25 * time.Millisecond) }, cond)
}

// eventually polls cond until it returns nil or a deadline passes.
func eventually(t testing.TB, cond func() error) {
	t.Helper()
	eventuallyTick(t, func() {}, cond)
}

func eventuallyTick(t testing.TB, tick func(), cond func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %v", err)
		}
		tick()
		time.Sleep(time.Millisecond)
	}
}

// leader returns the broker's partition t-0, which it must lead.
func (b *broker) leader() *Partition {
	b.c.t.Helper()
	p, err := b.mgr.Partition("t", 0)
	noErr(b.c.t, err)
	return p
}

// hosted returns the broker's partition t-0 whatever its role.
func (b *broker) hosted() *Partition {
	b.c.t.Helper()
	b.mgr.mu.RLock()
	p := b.mgr.parts[log.TopicPartition{Topic: "t", Partition: 0}]
	b.mgr.mu.RUnlock()
	require(b.c.t, p != nil, "broker %d does not host t-0", b.id)
	return p
}

// logBytes returns the raw batches of p's log from offset to its end.
func logBytes(t testing.TB, p *Partition, from int64) []byte {
	t.Helper()
	var out []byte
	for offset := from; offset < p.log.LogEndOffset(); {
		s, err := p.log.Read(offset, log.ReadOptions{MaxBytes: 1 << 30, MaxOffset: log.NoMaxOffset})
		noErr(t, err)
		data, err := s.AppendTo(nil)
		s.Release()
		noErr(t, err)
		if len(data) == 0 {
			break
		}
		hs := batchHeaders(t, data)
		out = append(out, data...)
		offset = hs[len(hs)-1].NextOffset()
	}
	return out
}

func batchHeaders(t testing.TB, data []byte) []record.Header {
	t.Helper()
	var hs []record.Header
	for rest := data; len(rest) > 0; {
		_, next, h, err := record.NextBatch(rest)
		noErr(t, err)
		hs = append(hs, h)
		rest = next
	}
	return hs
}

// sameLog reports (as an error, for eventually) how follower's log differs
// from leader's: offsets, high watermark, and the bytes from the larger
// log start offset.
func sameLog(t testing.TB, leader, follower *Partition) error {
	lo, fo := leader.Offsets(), follower.Offsets()
	if lo != fo {
		return fmt.Errorf("follower offsets %+v, leader %+v", fo, lo)
	}
	lb, fb := logBytes(t, leader, lo.LogStartOffset), logBytes(t, follower, fo.LogStartOffset)
	if !bytes.Equal(lb, fb) {
		return fmt.Errorf("follower log (%d bytes) differs from the leader's (%d bytes)", len(fb), len(lb))
	}
	return nil
}

// loopback is a LeaderClient without sockets: it serves a follower's
// requests from the leader broker's Manager the way internal/api does.
type loopback struct {
	c        *cluster
	from, to int32
}

var _ LeaderClient = (*loopback)(nil)

// enter checks the link for a request and returns the leader's Manager
// and the release to call once the request has read what it answers
// with (cluster.linkMu). A cancelled request fails, as it does on a
// socket: a fetcher stopped by a leadership change sends nothing more.
func (l *loopback) enter(ctx context.Context, fetch bool) (mgr *Manager, release func(), err error) {
	l.c.linkMu.RLock()
	if mgr, err = l.leaderManager(ctx, fetch); err != nil {
		l.c.linkMu.RUnlock()
		return nil, nil, err
	}
	return mgr, l.c.linkMu.RUnlock, nil
}

func (l *loopback) leaderManager(ctx context.Context, fetch bool) (*Manager, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	switch l.c.links[[2]int32{l.from, l.to}] {
	case linkDown:
		return nil, errNetwork
	case linkEpochsOnly:
		if fetch {
			return nil, errNetwork
		}
	}
	b := l.c.brokers[l.to]
	if b == nil {
		return nil, errNetwork
	}
	return b.mgr, nil
}

// Fetch reads every partition as a replica; when nothing came back it
// parks until the leader appends or its high watermark moves (or MaxWaitMs
// of real time passes), then reads once more.
func (l *loopback) Fetch(ctx context.Context, req ReplicaFetchRequest) ([]ReplicaFetchResult, error) {
	mgr, release, err := l.enter(ctx, true)
	if err != nil {
		return nil, err
	}
	wake := make(chan struct{}, 1)
	parts := make([]*Partition, len(req.Partitions))
	errs := make([]error, len(req.Partitions))
	for i, rp := range req.Partitions {
		p, err := mgr.Partition(rp.Topic, rp.Partition)
		if err != nil {
			errs[i] = err
			continue
		}
		parts[i] = p
		defer p.WatchAppends(wake)()
		defer p.Watch(wake)()
	}
	timer := time.NewTimer(time.Duration(req.MaxWaitMs) * time.Millisecond)
	defer timer.Stop()
	for woken := false; ; woken = true {
		out, n, failed, err := l.read(req, parts, errs)
		release()
		if err != nil || n > 0 || failed || woken {
			return out, err
		}
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if _, release, err = l.enter(ctx, true); err != nil {
			return nil, err
		}
	}
}

func (l *loopback) read(req ReplicaFetchRequest, parts []*Partition, errs []error) (out []ReplicaFetchResult, n int, failed bool, err error) {
	for i, rp := range req.Partitions {
		r := ReplicaFetchResult{Topic: rp.Topic, Partition: rp.Partition, HighWatermark: -1, LogStartOffset: -1}
		p := parts[i]
		if errs[i] != nil {
			r.Err, failed = errs[i], true
			out = append(out, r)
			continue
		}
		res, rerr := p.ReadAsReplica(req.ReplicaID, rp.FetchOffset,
			ReadOptions{MaxBytes: rp.MaxBytes, MinOneBatch: true, CurrentLeaderEpoch: rp.CurrentLeaderEpoch})
		if rerr != nil {
			r.Err, failed = rerr, true
			if errors.Is(rerr, log.ErrOffsetOutOfRange) {
				o := p.Offsets()
				r.HighWatermark, r.LogStartOffset = o.HighWatermark, o.LogStartOffset
			}
			out = append(out, r)
			continue
		}
		r.Records, err = res.Records.AppendTo(nil)
		res.Records.Release()
		if err != nil {
			return nil, 0, false, err
		}
		r.HighWatermark, r.LogStartOffset = res.HighWatermark, res.LogStartOffset
		n += len(r.Records)
		out = append(out, r)
	}
	return out, n, failed, nil
}

func (l *loopback) OffsetsForLeaderEpoch(ctx context.Context, replicaID int32, queries []EpochQuery) ([]EpochAnswer, error) {
	mgr, release, err := l.enter(ctx, false)
	if err != nil {
		return nil, err
	}
	defer release()
	l.c.mu.Lock()
	l.c.queries[replicaID] = append(l.c.queries[replicaID], queries...)
	l.c.mu.Unlock()
	var out []EpochAnswer
	for _, q := range queries {
		a := EpochAnswer{Topic: q.Topic, Partition: q.Partition, LeaderEpoch: -1, EndOffset: -1}
		p, err := mgr.Partition(q.Topic, q.Partition)
		if err == nil {
			err = p.CheckLeaderEpoch(q.CurrentLeaderEpoch)
		}
		if err != nil {
			a.Err = err
		} else {
			a.LeaderEpoch, a.EndOffset = p.EndOffsetForLeaderEpoch(q.LeaderEpoch)
		}
		out = append(out, a)
	}
	return out, nil
}

func (l *loopback) Close() error { return nil }

// alterRecorder is a fake AlterISR: it records proposals and answers
// them with the queued errors (nil once the queue is empty), optionally
// holding each answer until the test releases it.
type alterRecorder struct {
	proposals chan ISRProposal

	mu   sync.Mutex
	errs []error
	hold chan struct{} // non-nil: submit waits for a receive here
}

func newAlterRecorder() *alterRecorder {
	return &alterRecorder{proposals: make(chan ISRProposal, 64)}
}

func (r *alterRecorder) submit(p ISRProposal) error {
	r.proposals <- p
	r.mu.Lock()
	hold := r.hold
	var err error
	if len(r.errs) > 0 {
		err, r.errs = r.errs[0], r.errs[1:]
	}
	r.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return err
}

func (r *alterRecorder) failNext(errs ...error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, errs...)
}

// next waits for the next proposal.
func (r *alterRecorder) next(t testing.TB) ISRProposal {
	t.Helper()
	select {
	case p := <-r.proposals:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no ISR proposal")
		return ISRProposal{}
	}
}

// requireNone checks that no proposal has been submitted.
func (r *alterRecorder) requireNone(t testing.TB) {
	t.Helper()
	select {
	case p := <-r.proposals:
		t.Fatalf("unexpected ISR proposal %+v", p)
	default:
	}
}

// pendingISR returns the leader's ISR proposal in flight.
func pendingISR(p *Partition) (replica.ISRChange, bool) {
	p.replMu.Lock()
	defer p.replMu.Unlock()
	if p.leaderState == nil {
		return replica.ISRChange{}, false
	}
	return p.leaderState.Pending()
}

// fetchAs serves a fake follower's fetch at offset and returns the high
// watermark in the response and the bytes it carried.
func fetchAs(t testing.TB, p *Partition, replicaID int32, offset int64) (hw int64, n int) {
	t.Helper()
	res, err := p.ReadAsReplica(replicaID, offset, ReadOptions{MaxBytes: 1 << 20, CurrentLeaderEpoch: p.LeaderEpoch()})
	noErr(t, err)
	defer res.Records.Release()
	return res.HighWatermark, int(res.Records.Size)
}

// followerLEO is what the leader knows of a follower's log end offset.
func followerLEO(p *Partition, id int32) int64 {
	for _, f := range p.ReplicaStates() {
		if f.ID == id {
			return f.LogEndOffset
		}
	}
	return -2
}

// appendResult is an AppendAll's outcome, for tests running it in a
// goroutine.
type appendResult struct {
	res AppendResult
	err error
}

func appendAllAsync(p *Partition, ctx context.Context, records []byte) <-chan appendResult {
	done := make(chan appendResult, 1)
	go func() {
		res, err := p.AppendAll(ctx, records)
		done <- appendResult{res, err}
	}()
	return done
}

// requireWaiting checks that an AppendAll has not returned.
func requireWaiting(t testing.TB, done <-chan appendResult) {
	t.Helper()
	select {
	case r := <-done:
		t.Fatalf("AppendAll returned early: %+v, %v", r.res, r.err)
	default:
	}
}

func waitResult(t testing.TB, done <-chan appendResult) appendResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("AppendAll did not return")
		return appendResult{}
	}
}
