package api

import (
	"math"
	"math/rand/v2"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Incremental fetch sessions (KIP-227). A consumer that fetches the same
// partitions over and over sends them once; afterwards it sends only the
// partitions whose fetch position changed, and the broker answers only the
// partitions with something new (records, a moved high watermark or log
// start offset, an error). The request's session_id and session_epoch say
// what to do:
//
//	id 0,  epoch -1   full fetch, no session
//	id 0,  epoch 0    full fetch, create a session (id 0 back if the cache is full)
//	id N,  epoch 0    close N, full fetch, create a new session
//	id N,  epoch -1   close N, full fetch, no session
//	id N,  epoch E>0  incremental fetch on N; E must be N's next epoch
//
// The cache is bounded in sessions (max.incremental.fetch.session.cache.slots)
// and in partitions over all sessions. A new session evicts one unused for
// fetchSessionEvictionMs, or else the smallest session if it is not larger
// than the new one (Kafka's rule: big consumers keep their sessions, small
// ones rebuild cheaply); if neither, the fetch goes without a session.

const (
	// defaultFetchSessionSlots is Kafka's
	// max.incremental.fetch.session.cache.slots default.
	defaultFetchSessionSlots = 1000
	// fetchSessionEvictionMs: a session unused this long may be evicted by
	// any new one (Kafka's fixed 120 s).
	fetchSessionEvictionMs = 120_000
	// maxFetchSessionPartitions bounds the partitions cached over all
	// sessions (about 150 bytes each): a session that would pass it is not
	// created, or, when an incremental fetch would grow it past the bound,
	// closed with FETCH_SESSION_ID_NOT_FOUND so the client starts over.
	maxFetchSessionPartitions = 200_000
)

// fetchSessionKey names a partition by topic name (Fetch v4–12).
type fetchSessionKey struct {
	topic     string
	partition int32
}

// fetchSessionPartition is a partition of a session: the fetch parameters
// the client last sent and what the broker last answered.
type fetchSessionPartition struct {
	key                fetchSessionKey
	fetchOffset        int64
	maxBytes           int32
	currentLeaderEpoch int32
	// highWatermark, logStartOffset and lastStableOffset as last sent; -1
	// makes the next fetch include the partition (new, or after an error).
	highWatermark    int64
	logStartOffset   int64
	lastStableOffset int64
}

// fetchSession is one client's session.
type fetchSession struct {
	id         int32
	epoch      int32 // the epoch the next request must carry
	partitions []*fetchSessionPartition
	byKey      map[fetchSessionKey]*fetchSessionPartition
	lastUsedMs int64
}

// fetchSessionCache holds the sessions; one mutex guards everything.
type fetchSessionCache struct {
	mu         sync.Mutex
	slots      int
	sessions   map[int32]*fetchSession
	partitions int // cached over all sessions
}

func newFetchSessionCache(slots int) *fetchSessionCache {
	if slots <= 0 {
		slots = defaultFetchSessionSlots
	}
	return &fetchSessionCache{slots: slots, sessions: map[int32]*fetchSession{}}
}

// fetchContextKind is what a request does with sessions.
type fetchContextKind int

const (
	fetchSessionless  fetchContextKind = iota // full fetch, session id 0 back
	fetchCreate                               // full fetch, then try to create a session
	fetchIncremental                          // an existing session
	fetchSessionError                         // a top-level error, nothing read
)

// fetchContext is a request's view of its session, decided before reading.
type fetchContext struct {
	kind      fetchContextKind
	errorCode int16
	session   *fetchSession // fetchIncremental
	reads     []*fetchRead  // the partitions to read, in response order
}

// begin decides the request's context and the partitions to read.
func (c *fetchSessionCache) begin(req *kmsg.FetchRequest, nowMs int64) *fetchContext {
	if req.Version < 7 {
		return &fetchContext{kind: fetchSessionless, reads: fetchRequestReads(req)}
	}
	if req.SessionEpoch == 0 || req.SessionEpoch == -1 {
		if req.SessionID != 0 {
			c.remove(req.SessionID)
		}
		kind := fetchCreate
		if req.SessionEpoch == -1 {
			kind = fetchSessionless
		}
		return &fetchContext{kind: kind, reads: fetchRequestReads(req)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sessions[req.SessionID]
	switch {
	case !ok:
		return &fetchContext{kind: fetchSessionError, errorCode: kerr.FetchSessionIDNotFound.Code}
	case s.epoch != req.SessionEpoch:
		return &fetchContext{kind: fetchSessionError, errorCode: kerr.InvalidFetchSessionEpoch.Code}
	}
	if !c.updateLocked(s, req) {
		c.removeLocked(s)
		return &fetchContext{kind: fetchSessionError, errorCode: kerr.FetchSessionIDNotFound.Code}
	}
	if len(s.partitions) == 0 {
		// Nothing left to fetch: Kafka drops the session and answers
		// without one.
		c.removeLocked(s)
		return &fetchContext{kind: fetchSessionless}
	}
	s.epoch = fetchNextEpoch(s.epoch)
	s.lastUsedMs = nowMs
	reads := make([]*fetchRead, len(s.partitions))
	for i, p := range s.partitions {
		reads[i] = &fetchRead{topic: p.key.topic, partition: p.key.partition, fetchOffset: p.fetchOffset,
			maxBytes: p.maxBytes, currentLeaderEpoch: p.currentLeaderEpoch,
			sentHighWatermark: p.highWatermark, sentLogStartOffset: p.logStartOffset, sentLastStableOffset: p.lastStableOffset}
	}
	return &fetchContext{kind: fetchIncremental, session: s, reads: reads}
}

// fetchNextEpoch follows Kafka: epochs count up from 1 and wrap to 1.
func fetchNextEpoch(epoch int32) int32 {
	if epoch == math.MaxInt32 {
		return 1
	}
	return epoch + 1
}

// fetchRequestReads lists a full fetch's partitions in request order.
func fetchRequestReads(req *kmsg.FetchRequest) []*fetchRead {
	var reads []*fetchRead
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			reads = append(reads, &fetchRead{topic: t.Topic, partition: p.Partition, fetchOffset: p.FetchOffset,
				maxBytes: p.PartitionMaxBytes, currentLeaderEpoch: fetchCurrentLeaderEpoch(req, p),
				sentHighWatermark: -1, sentLogStartOffset: -1, sentLastStableOffset: -1})
		}
	}
	return reads
}

// fetchCurrentLeaderEpoch is the partition's current_leader_epoch, which
// Fetch carries from v9; -1 skips the check.
func fetchCurrentLeaderEpoch(req *kmsg.FetchRequest, p kmsg.FetchRequestTopicPartition) int32 {
	if req.Version < 9 {
		return -1
	}
	return p.CurrentLeaderEpoch
}

// updateLocked applies an incremental request: partitions sent are added or
// updated, then forgotten ones removed, as Kafka orders it. False when the
// session would grow past the cache's partition bound.
func (c *fetchSessionCache) updateLocked(s *fetchSession, req *kmsg.FetchRequest) bool {
	for _, t := range req.Topics {
		for _, rp := range t.Partitions {
			key := fetchSessionKey{t.Topic, rp.Partition}
			p, ok := s.byKey[key]
			if !ok {
				if c.partitions >= maxFetchSessionPartitions {
					return false
				}
				p = &fetchSessionPartition{key: key, highWatermark: -1, logStartOffset: -1, lastStableOffset: -1}
				s.byKey[key] = p
				s.partitions = append(s.partitions, p)
				c.partitions++
			}
			p.fetchOffset, p.maxBytes = rp.FetchOffset, rp.PartitionMaxBytes
			p.currentLeaderEpoch = fetchCurrentLeaderEpoch(req, rp)
		}
	}
	forgotten := 0
	for _, t := range req.ForgottenTopics {
		for _, id := range t.Partitions {
			key := fetchSessionKey{t.Topic, id}
			if _, ok := s.byKey[key]; ok {
				delete(s.byKey, key)
				forgotten++
			}
		}
	}
	if forgotten > 0 {
		kept := s.partitions[:0]
		for _, p := range s.partitions {
			if s.byKey[p.key] == p {
				kept = append(kept, p)
			}
		}
		clear(s.partitions[len(kept):])
		s.partitions = kept
		c.partitions -= forgotten
	}
	return true
}

// create makes a session of a full fetch's partitions, with what the
// response sends as their state; 0 when the cache has no room.
func (c *fetchSessionCache) create(reads []*fetchRead, nowMs int64) int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(reads)
	if n > maxFetchSessionPartitions {
		return 0
	}
	for len(c.sessions) >= c.slots || c.partitions+n > maxFetchSessionPartitions {
		if !c.evictOneLocked(n, nowMs) {
			return 0
		}
	}
	s := &fetchSession{epoch: 1, byKey: make(map[fetchSessionKey]*fetchSessionPartition, n), lastUsedMs: nowMs}
	for _, rd := range reads {
		key := fetchSessionKey{rd.topic, rd.partition}
		if _, dup := s.byKey[key]; dup {
			continue
		}
		p := &fetchSessionPartition{key: key, fetchOffset: rd.fetchOffset, maxBytes: rd.maxBytes,
			currentLeaderEpoch: rd.currentLeaderEpoch}
		p.highWatermark, p.logStartOffset = rd.responseState()
		p.lastStableOffset = rd.responseLastStableOffset()
		s.byKey[key] = p
		s.partitions = append(s.partitions, p)
	}
	for {
		s.id = rand.Int32N(math.MaxInt32) + 1 // never 0, which means none
		if _, taken := c.sessions[s.id]; !taken {
			break
		}
	}
	c.sessions[s.id] = s
	c.partitions += len(s.partitions)
	return s.id
}

// evictOneLocked makes room for a session of size partitions: the least
// recently used session if it is stale, else the smallest (then least
// recently used) session if it is no larger than the new one.
func (c *fetchSessionCache) evictOneLocked(size int, nowMs int64) bool {
	var oldest, smallest *fetchSession
	for _, s := range c.sessions {
		if oldest == nil || s.lastUsedMs < oldest.lastUsedMs {
			oldest = s
		}
		if smallest == nil || len(s.partitions) < len(smallest.partitions) ||
			len(s.partitions) == len(smallest.partitions) && s.lastUsedMs < smallest.lastUsedMs {
			smallest = s
		}
	}
	switch {
	case oldest == nil:
		return false
	case nowMs-oldest.lastUsedMs > fetchSessionEvictionMs:
		c.removeLocked(oldest)
	case len(smallest.partitions) <= size:
		c.removeLocked(smallest)
	default:
		return false
	}
	return true
}

// finishIncremental picks the partitions an incremental response carries
// and records what it sends. Partitions that returned records move to the
// end of the session's order, so the others get the response's byte budget
// first next time (Kafka does the same). reads not returned are released.
func (c *fetchSessionCache) finishIncremental(s *fetchSession, reads []*fetchRead) []*fetchRead {
	c.mu.Lock()
	defer c.mu.Unlock()
	var send, moved []*fetchRead
	for _, rd := range reads {
		hw, logStart := rd.responseState()
		lastStable := rd.responseLastStableOffset()
		// Kafka's rule: a partition whose offsets changed is sent even
		// with no records; the LSO moves alone when a marker ends a
		// transaction that blocked read_committed readers.
		mustRespond := rd.recordsSize() > 0 || rd.err != nil ||
			hw != rd.sentHighWatermark || logStart != rd.sentLogStartOffset || lastStable != rd.sentLastStableOffset
		if !mustRespond {
			rd.release()
			continue
		}
		send = append(send, rd)
		if p := s.byKey[fetchSessionKey{rd.topic, rd.partition}]; p != nil && c.sessions[s.id] == s {
			p.highWatermark, p.logStartOffset, p.lastStableOffset = hw, logStart, lastStable
			if rd.recordsSize() > 0 {
				moved = append(moved, rd)
			}
		}
	}
	if len(moved) > 0 {
		c.moveToEndLocked(s, moved)
	}
	return send
}

func (c *fetchSessionCache) moveToEndLocked(s *fetchSession, moved []*fetchRead) {
	isMoved := make(map[fetchSessionKey]bool, len(moved))
	for _, rd := range moved {
		isMoved[fetchSessionKey{rd.topic, rd.partition}] = true
	}
	order := make([]*fetchSessionPartition, 0, len(s.partitions))
	for _, p := range s.partitions {
		if !isMoved[p.key] {
			order = append(order, p)
		}
	}
	for _, p := range s.partitions {
		if isMoved[p.key] {
			order = append(order, p)
		}
	}
	s.partitions = order
}

func (c *fetchSessionCache) remove(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.sessions[id]; ok {
		c.removeLocked(s)
	}
}

func (c *fetchSessionCache) removeLocked(s *fetchSession) {
	if c.sessions[s.id] != s {
		return
	}
	delete(c.sessions, s.id)
	c.partitions -= len(s.partitions)
}

// len is the number of sessions, for tests and metrics.
func (c *fetchSessionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}
