package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metrics"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/quota"
	"github.com/sluicelog/sluice/internal/wire"
)

// Fetch v4–12. v4 is the oldest version current clients send (it added
// isolation levels); v13 addresses topics by id, which we do not have yet.
// The response is framed by hand (wire.FetchFrame) so record bytes go from
// the segment file to the socket with sendfile(2).
var fetchHandler = handler{key: 1, minVersion: 4, maxVersion: 12, serveFrame: serveFetch}

// defaultFetchMaxBytes is Kafka's fetch.max.bytes default (55 MiB), the cap
// on one response when the broker config leaves it unset.
const defaultFetchMaxBytes = 55 << 20

// fetchRead is one partition of a fetch: what to read, and what was read.
type fetchRead struct {
	topic              string
	partition          int32
	fetchOffset        int64
	maxBytes           int32
	currentLeaderEpoch int32
	// The session's high watermark and log start offset as last sent
	// (incremental fetches); -1 when none was.
	sentHighWatermark, sentLogStartOffset, sentLastStableOffset int64

	part    *partition.Partition
	denied  error // the principal may not read the partition; set per request
	err     error
	result  partition.ReadResult
	holding bool // result.Records must be released
}

func (rd *fetchRead) recordsSize() int64 {
	if !rd.holding {
		return 0
	}
	return rd.result.Records.Size
}

func (rd *fetchRead) release() {
	if rd.holding {
		rd.result.Records.Release()
		rd.holding = false
	}
	rd.result = partition.ReadResult{}
}

// responseState is the high watermark and log start offset the response
// carries for the partition: -1 for errors, except OFFSET_OUT_OF_RANGE,
// which carries the partition's offsets so a client can reset.
func (rd *fetchRead) responseState() (highWatermark, logStartOffset int64) {
	switch {
	case rd.err == nil:
		return rd.result.HighWatermark, rd.result.LogStartOffset
	case rd.part != nil && errors.Is(rd.err, log.ErrOffsetOutOfRange):
		o := rd.part.Offsets()
		return o.HighWatermark, o.LogStartOffset
	default:
		return -1, -1
	}
}

// responseLastStableOffset is the last stable offset the response carries:
// -1 for errors, as Kafka sends.
func (rd *fetchRead) responseLastStableOffset() int64 {
	if rd.err != nil {
		return -1
	}
	return rd.result.LastStableOffset
}

func serveFetch(ctx context.Context, b *Broker, r *Request) (wire.Response, error) {
	req := r.Body.(*kmsg.FetchRequest)
	clk := fetchClock(b)
	fc := b.fetchSessions.begin(req, clock.UnixMs(clk))
	resp := &wire.FetchResponse{Version: req.Version, CorrelationID: r.Header.CorrelationID}
	if fc.kind == fetchSessionError {
		resp.ErrorCode = fc.errorCode
		r.noteError(fc.errorCode)
		return wire.EncodeFetchResponse(resp)
	}
	fetchAuthorize(b, r, req, fc.reads)
	f := fetcher{b: b, req: req, reads: fc.reads, maxBytes: fetchResponseMaxBytes(b, req)}
	if !f.fromReplica() {
		f.maxBytes = b.quotaFetchMaxBytes(r, f.maxBytes)
	}
	f.fetch(ctx, clk)
	send := fc.reads
	switch fc.kind {
	case fetchCreate:
		resp.SessionID = b.fetchSessions.create(fc.reads, clock.UnixMs(clk))
	case fetchIncremental:
		resp.SessionID = fc.session.id
		send = b.fetchSessions.finishIncremental(fc.session, fc.reads)
	}
	fetchObserve(b, r, send, f.fromReplica())
	if !f.fromReplica() {
		resp.ThrottleMillis = fetchThrottle(ctx, b, r, send, f.readTook)
	}
	resp.Topics = fetchResponseTopics(req, send)
	return wire.EncodeFetchResponse(resp)
}

// fetchAuthorize marks the partitions the principal may not read: a
// consumer needs READ on each topic; a follower (replica id set) needs
// CLUSTER_ACTION on the cluster, else every partition is refused with
// TOPIC_AUTHORIZATION_FAILED, as Kafka answers it. A refused partition
// does not end a long poll early: the others may still wait for data.
func fetchAuthorize(b *Broker, r *Request, req *kmsg.FetchRequest, reads []*fetchRead) {
	z := b.authz(r)
	if !z.enabled() {
		return
	}
	var replicaErr error
	if req.ReplicaID >= 0 {
		if err := z.cluster(auth.OpClusterAction); err != nil {
			replicaErr = fmt.Errorf("%w: replica fetch: %w", auth.ErrTopicAuthorizationFailed, err)
		}
	}
	for _, rd := range reads {
		switch {
		case req.ReplicaID >= 0:
			rd.denied = replicaErr
		default:
			rd.denied = z.topic(auth.OpRead, rd.topic)
		}
	}
}

// fetchThrottle records a consumer fetch's bytes and read time in its
// client's quota sensors and mutes the connection for the throttle, which
// it returns for throttle_time_ms. Unlike Kafka, which answers a throttled
// fetch with no records (and takes the bytes back out of the sensor), the
// records read are sent: the mute still holds the consumer's next fetch
// back until its rate is within the quota.
func fetchThrottle(ctx context.Context, b *Broker, r *Request, send []*fetchRead, readTook time.Duration) int32 {
	if b.Quotas == nil {
		return 0
	}
	var bytes int64
	for _, rd := range send {
		bytes += rd.recordsSize()
	}
	throttleMs := b.noteThrottle(quota.Fetch, b.quotaRecord(r, quota.Fetch, float64(bytes)), b.quotaRequestTime(r, readTook))
	// Fetch v8 is KIP-219's: older consumers expect the response held back.
	quota.ThrottleChannel(ctx, throttleMs, r.Header.APIVersion >= 8)
	return int32(min(throttleMs, math.MaxInt32))
}

// fetchObserve counts the partitions' error codes and, for a consumer,
// the bytes sent per topic (Kafka's BytesOut leaves replication out).
func fetchObserve(b *Broker, r *Request, send []*fetchRead, fromReplica bool) {
	var topic string
	var counters *metrics.TopicCounters
	for _, rd := range send {
		r.noteError(errorCode(rd.err))
		size := rd.recordsSize()
		if fromReplica || size == 0 {
			continue
		}
		if counters == nil || rd.topic != topic {
			topic, counters = rd.topic, b.topicMetrics(rd.topic)
		}
		counters.Out(size)
	}
}

func fetchClock(b *Broker) clock.Clock {
	if b.Clock != nil {
		return b.Clock
	}
	return clock.Real()
}

// fetchResponseMaxBytes is the request's max_bytes capped by fetch.max.bytes.
func fetchResponseMaxBytes(b *Broker, req *kmsg.FetchRequest) int64 {
	limit := int64(b.Config.FetchMaxBytes)
	if limit <= 0 {
		limit = defaultFetchMaxBytes
	}
	return max(min(int64(req.MaxBytes), limit), 0)
}

// fetcher reads a fetch's partitions, waiting for min_bytes if asked to.
type fetcher struct {
	b        *Broker
	req      *kmsg.FetchRequest
	reads    []*fetchRead
	maxBytes int64
	// readTook is the time spent reading, without the long-poll wait: what
	// the request_percentage quota charges.
	readTook time.Duration
}

// fetch reads every partition; when that gives fewer than min_bytes and
// max_wait_ms allows, it waits for an append to any of them (Partition.Watch
// fires when a high watermark moves), the deadline or the request's end,
// and reads again. Like Kafka it answers at once when a partition fails.
func (f *fetcher) fetch(ctx context.Context, clk clock.Clock) {
	readAll := func() (int64, bool) {
		start := clk.Now()
		defer func() { f.readTook += clk.Now().Sub(start) }()
		return f.readAll()
	}
	bytes, failed := readAll()
	if f.done(bytes, failed) {
		return
	}
	w := f.b.fetchWaits.get()
	defer f.b.fetchWaits.put(w)
	for _, rd := range f.reads {
		switch {
		case rd.part == nil || rd.denied != nil:
		case f.fromReplica():
			// A follower waits for the leader's appends: the HW moves
			// only after followers fetch them.
			w.cancels = append(w.cancels, rd.part.WatchAppends(w.wake))
		default:
			w.cancels = append(w.cancels, rd.part.Watch(w.wake))
		}
	}
	// An append between the read and the watches would not wake us: look
	// once more now that they are in place.
	if f.moved() {
		if bytes, failed = readAll(); f.done(bytes, failed) {
			return
		}
	}
	expired := w.arm(clk, time.Duration(f.req.MaxWaitMillis)*time.Millisecond)
	for {
		select {
		case <-w.wake:
		case <-expired:
			return
		case <-ctx.Done():
			return
		}
		if bytes, failed = readAll(); f.done(bytes, failed) {
			return
		}
	}
}

// fetchWait is what a long-polling fetch waits with: the channel its
// partitions' watches signal, its max-wait timer and the watches to
// cancel. With 1,000 consumers long-polling idle partitions the broker
// serves about 2,000 such waits a second, so they are pooled: making them
// was six of the nineteen allocations of each (BenchmarkFetchLongPollExpires).
type fetchWait struct {
	wake    chan struct{}
	timer   clock.Timer
	clock   clock.Clock // timer's
	cancels []func()
}

// arm starts the max-wait timer and returns the channel it fires on.
func (w *fetchWait) arm(clk clock.Clock, maxWait time.Duration) <-chan time.Time {
	if w.timer == nil || w.clock != clk {
		w.timer, w.clock = clk.NewTimer(maxWait), clk
	} else {
		w.timer.Reset(maxWait)
	}
	return w.timer.C()
}

// maxPooledFetchWatches bounds the watch list a pooled fetchWait keeps.
const maxPooledFetchWatches = 64

// fetchWaitPool recycles fetchWaits; the zero value is ready to use.
type fetchWaitPool struct{ pool sync.Pool }

func (p *fetchWaitPool) get() *fetchWait {
	if w, ok := p.pool.Get().(*fetchWait); ok {
		return w
	}
	return &fetchWait{wake: make(chan struct{}, 1)}
}

// put ends the wait and keeps it for the next. Once the watches are
// cancelled nothing signals wake any more, so draining it leaves no
// stale signal; a stopped timer sends nothing stale either (the
// semantics of package time since Go 1.23, which clock keeps).
func (p *fetchWaitPool) put(w *fetchWait) {
	if w.timer != nil {
		w.timer.Stop()
	}
	for i, cancel := range w.cancels {
		cancel()
		w.cancels[i] = nil
	}
	w.cancels = w.cancels[:0]
	if cap(w.cancels) > maxPooledFetchWatches {
		w.cancels = nil // a fetch of many partitions does not pin its list
	}
	select {
	case <-w.wake:
	default:
	}
	p.pool.Put(w)
}

func (f *fetcher) done(bytes int64, failed bool) bool {
	return failed || f.req.MaxWaitMillis <= 0 || bytes >= int64(f.req.MinBytes) || len(f.reads) == 0
}

// fromReplica says whether a follower (not a consumer) sent the fetch.
func (f *fetcher) fromReplica() bool { return f.req.ReplicaID >= 0 }

// readCommitted says whether a consumer asked for isolation_level
// read_committed: reads end at the last stable offset.
func (f *fetcher) readCommitted() bool { return !f.fromReplica() && f.req.IsolationLevel == 1 }

// moved says whether a partition's bound (the high watermark for a
// consumer, the log end for a follower) moved since it was read.
func (f *fetcher) moved() bool {
	for _, rd := range f.reads {
		if rd.part == nil || rd.err != nil {
			continue
		}
		o := rd.part.Offsets()
		if (f.fromReplica() && o.LogEndOffset != rd.result.LogEndOffset) || (!f.fromReplica() && o.HighWatermark != rd.result.HighWatermark) ||
			(f.readCommitted() && o.LastStableOffset != rd.result.LastStableOffset) {
			return true
		}
	}
	return false
}

// readAll reads every partition in order within the response's byte
// budget. The first partition that has records returns at least its first
// batch whole, however large (KIP-74), so a consumer is never stuck behind
// a batch larger than its limits; after it the limits are strict.
func (f *fetcher) readAll() (bytes int64, failed bool) {
	remaining := f.maxBytes
	minOneBatch := true
	for _, rd := range f.reads {
		rd.release()
		rd.err = rd.denied
		if rd.denied != nil {
			continue
		}
		if rd.part == nil {
			rd.part, rd.err = f.b.Partitions.Partition(rd.topic, rd.partition)
		}
		if rd.err != nil {
			failed = true
			continue
		}
		opts := partition.ReadOptions{MaxBytes: int32(max(min(int64(rd.maxBytes), remaining), 0)),
			MinOneBatch: minOneBatch, CurrentLeaderEpoch: rd.currentLeaderEpoch, ReadCommitted: f.readCommitted()}
		var res partition.ReadResult
		var err error
		if f.fromReplica() {
			res, err = rd.part.ReadAsReplica(f.req.ReplicaID, rd.fetchOffset, opts)
		} else {
			res, err = rd.part.Read(rd.fetchOffset, opts)
		}
		if err != nil {
			rd.err, failed = err, true
			continue
		}
		rd.result, rd.holding = res, true
		if size := res.Records.Size; size > 0 {
			minOneBatch = false
			remaining = max(remaining-size, 0)
			bytes += size
		}
	}
	return bytes, failed
}

// fetchResponseTopics groups reads into topics, consecutive partitions of
// one topic together, handing their records to the response.
func fetchResponseTopics(req *kmsg.FetchRequest, reads []*fetchRead) []wire.FetchTopic {
	var topics []wire.FetchTopic
	for _, rd := range reads {
		if len(topics) == 0 || topics[len(topics)-1].Topic != rd.topic {
			topics = append(topics, wire.FetchTopic{Topic: rd.topic})
		}
		t := &topics[len(topics)-1]
		t.Partitions = append(t.Partitions, fetchResponsePartition(req, rd))
	}
	return topics
}

func fetchResponsePartition(req *kmsg.FetchRequest, rd *fetchRead) wire.FetchPartition {
	hw, logStart := rd.responseState()
	p := wire.FetchPartition{Partition: rd.partition, ErrorCode: errorCode(rd.err), HighWatermark: hw,
		LastStableOffset: -1, LogStartOffset: logStart, PreferredReadReplica: -1}
	if rd.err != nil {
		return p
	}
	// read_committed readers get the aborted transactions of their range
	// (an empty list, not null, when there are none, as Kafka sends).
	p.LastStableOffset = rd.result.LastStableOffset
	if req.IsolationLevel == 1 {
		p.AbortedTransactions = make([]wire.FetchAbortedTransaction, 0, len(rd.result.AbortedTxns))
		for _, a := range rd.result.AbortedTxns {
			p.AbortedTransactions = append(p.AbortedTransactions, wire.FetchAbortedTransaction{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset})
		}
	}
	if rd.holding {
		records := rd.result.Records
		p.Records = &records
		rd.holding = false // the response releases it now
	}
	return p
}
