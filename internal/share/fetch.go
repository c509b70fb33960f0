package share

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/record"
)

// Acknowledgement is one acknowledgement batch of ShareFetch or
// ShareAcknowledge: Types has one entry for the whole range, or one per
// offset.
type Acknowledgement struct {
	FirstOffset, LastOffset int64
	Types                   []int8
}

// FetchRequest is a ShareFetch as the coordinator sees it.
type FetchRequest struct {
	GroupID, MemberID string
	SessionEpoch      int32
	// Partitions are added to the session (epoch 0: they are the session).
	Partitions []TopicPartition
	Forget     []TopicPartition
	Acks       map[TopicPartition][]Acknowledgement
	MaxWait    time.Duration
	MaxRecords int
	MaxBytes   int32
	// Acknowledge only: ShareAcknowledge fetches nothing, nor does a
	// ShareFetch that renews locks.
	AcknowledgeOnly bool
	// RenewAck is the request's IsRenewAck (v2, KIP-1222): only then may
	// its acknowledgements carry RENEW.
	RenewAck bool
	// Conn is the client connection's context: a session opened by this
	// request ends when it is done, and the records its member holds are
	// released at once, as Kafka releases them when the connection
	// closes. nil: the session ends only as below.
	Conn context.Context
}

// PartitionResult is one partition of a ShareFetch or ShareAcknowledge
// response.
type PartitionResult struct {
	TopicPartition
	Err         error // fetching
	AckErr      error // the acknowledgements
	LeaderEpoch int32
	Records     []byte
	Acquired    []sharegroup.AcquiredRange
}

// Fetch serves ShareFetch and ShareAcknowledge: apply the
// acknowledgements, then (unless AcknowledgeOnly, RenewAck or closing the
// session) acquire records from every partition of the session, waiting up to
// MaxWait for some. A request-level error (session, member) is returned
// as err.
func (c *Coordinator) Fetch(ctx context.Context, req FetchRequest) ([]PartitionResult, error) {
	sess, closing, err := c.session(req)
	if err != nil {
		return nil, err
	}
	results := c.acknowledge(ctx, req)
	if closing {
		c.releaseSession(ctx, req.GroupID, req.MemberID, sess)
		c.dropIfNoSessions(req.GroupID)
		return results, nil
	}
	if req.AcknowledgeOnly || req.RenewAck {
		return results, nil
	}
	tps := sessionPartitions(sess, c)
	deadline := c.opts.Clock.Now().Add(req.MaxWait)
	for {
		wake := make(chan struct{}, 1)
		fetched, cancel := c.acquireAll(ctx, req, tps, wake)
		got := false
		for _, r := range fetched {
			got = got || len(r.Acquired) > 0 || r.Err != nil
		}
		remaining := deadline.Sub(c.opts.Clock.Now())
		if got || remaining <= 0 || ctx.Err() != nil {
			cancel()
			return mergeResults(results, fetched), nil
		}
		// Wake on an append, or when the next lock may expire.
		waitFor(ctx, c.opts.Clock, min(remaining, c.nextExpiry()), wake)
		cancel()
	}
}

func sessionPartitions(s *session, c *Coordinator) []TopicPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	tps := make([]TopicPartition, 0, len(s.partitions))
	for tp := range s.partitions {
		tps = append(tps, tp)
	}
	sortTopicPartitions(tps)
	return tps
}

// session checks the request's share session epoch and updates the
// session: 0 opens one (replacing the member's old one), -1 closes it,
// anything else must be the session's next epoch.
func (c *Coordinator) session(req FetchRequest) (s *session, closing bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The group lives on its coordinator; a partition leader elsewhere
	// cannot check the member and trusts the session instead. A group
	// this node coordinated before the coordinator moved is stale, so it
	// is only checked while this node coordinates it.
	if _, err := c.groupPartitionLocked(req.GroupID); err == nil {
		if g := c.groups[req.GroupID]; g != nil && g.Member(req.MemberID) == nil {
			return nil, false, fmt.Errorf("share group %q member %q: %w", req.GroupID, req.MemberID, sharegroup.ErrUnknownMemberID)
		}
	}
	key := sessionKey{req.GroupID, req.MemberID}
	switch req.SessionEpoch {
	case 0:
		if req.AcknowledgeOnly || len(req.Acks) > 0 {
			return nil, false, fmt.Errorf("acknowledgements with share session epoch 0: %w", ErrInvalidShareSessionEpoch)
		}
		if _, ok := c.sessions[key]; !ok && len(c.sessions) >= c.opts.Config.MaxSessions {
			return nil, false, fmt.Errorf("%d share sessions: %w", len(c.sessions), ErrShareSessionLimitReached)
		}
		if old := c.sessions[key]; old != nil && old.stopWatch != nil {
			old.stopWatch()
		}
		s = &session{nextEpoch: 1, partitions: map[TopicPartition]bool{}}
		if req.Conn != nil {
			s.stopWatch = context.AfterFunc(req.Conn, func() { c.connectionClosed(req.GroupID, req.MemberID, s) })
		}
		c.sessions[key] = s
	case -1:
		s = c.sessions[key]
		if s == nil {
			return nil, false, fmt.Errorf("share group %q member %q: %w", req.GroupID, req.MemberID, ErrShareSessionNotFound)
		}
		if s.stopWatch != nil {
			s.stopWatch()
		}
		delete(c.sessions, key)
		return s, true, nil
	default:
		s = c.sessions[key]
		if s == nil {
			return nil, false, fmt.Errorf("share group %q member %q: %w", req.GroupID, req.MemberID, ErrShareSessionNotFound)
		}
		if req.SessionEpoch != s.nextEpoch {
			return nil, false, fmt.Errorf("share session epoch %d, expected %d: %w", req.SessionEpoch, s.nextEpoch, ErrInvalidShareSessionEpoch)
		}
		s.nextEpoch = max(1, s.nextEpoch+1) // wraps to 1, as in Kafka
	}
	if !req.AcknowledgeOnly {
		for _, tp := range req.Partitions {
			s.partitions[tp] = true
		}
		for _, tp := range req.Forget {
			delete(s.partitions, tp)
		}
	}
	return s, false, nil
}

// acknowledge applies every acknowledgement batch and writes the state of
// each partition that changed before the response says so.
func (c *Coordinator) acknowledge(ctx context.Context, req FetchRequest) []PartitionResult {
	tps := make([]TopicPartition, 0, len(req.Acks))
	for tp := range req.Acks {
		tps = append(tps, tp)
	}
	sortTopicPartitions(tps)
	out := make([]PartitionResult, len(tps))
	// Each partition's state write waits for its share coordinator's
	// append (an fsync and the ISR): the partitions go side by side, a
	// bounded number at a time, so the waits overlap instead of adding up.
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxConcurrentAcknowledgements)
	for i, tp := range tps {
		out[i] = PartitionResult{TopicPartition: tp}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			out[i].AckErr = c.acknowledgePartition(ctx, req, tp)
		})
	}
	wg.Wait()
	return out
}

// maxConcurrentAcknowledgements bounds the partitions of one request whose
// acknowledgements (and state writes) run at once.
const maxConcurrentAcknowledgements = 16

func (c *Coordinator) acknowledgePartition(ctx context.Context, req FetchRequest, tp TopicPartition) error {
	acks := req.Acks[tp]
	// A malformed batch refuses the partition's acknowledgements whole,
	// before any is applied, as Kafka validates them before acting.
	for _, a := range acks {
		if err := checkAcknowledgement(a, req.RenewAck); err != nil {
			return err
		}
	}
	part, err := c.opts.Partitions.Partition(tp.Topic, tp.Partition)
	if err != nil {
		return err
	}
	sp, err := c.lockSharePartition(ctx, partitionKey{req.GroupID, tp}, part)
	if err != nil {
		return err
	}
	defer sp.mu.Unlock()
	now := c.nowMs()
	sp.p.ExpireLocks(now)
	var errs []error
	for _, a := range acks {
		errs = append(errs, applyAcknowledgement(sp.p, req.MemberID, a, now))
	}
	// A renewal changes only a lock's expiry, which is not part of the
	// durable state (a new leader starts every lock afresh), so renewals
	// alone are not written.
	if !onlyRenewals(acks) {
		if err := c.persistLocked(ctx, sp); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// checkAcknowledgement refuses a batch whose types do not fit its range,
// a type that is none of Kafka's, and RENEW in a request that did not say
// it renews (IsRenewAck false, or a v1 request, which has no such field).
func checkAcknowledgement(a Acknowledgement, renewAck bool) error {
	n := a.LastOffset - a.FirstOffset + 1
	switch {
	case n <= 0 || len(a.Types) == 0:
		return fmt.Errorf("acknowledgement %d-%d: %w", a.FirstOffset, a.LastOffset, ErrInvalidRequest)
	case len(a.Types) > 1 && int64(len(a.Types)) != n:
		return fmt.Errorf("acknowledgement %d-%d with %d types: %w", a.FirstOffset, a.LastOffset, len(a.Types), ErrInvalidRequest)
	}
	for _, t := range a.Types {
		switch at := sharegroup.AcknowledgeType(t); {
		case !at.Valid():
			return fmt.Errorf("acknowledgement %d-%d: type %d: %w", a.FirstOffset, a.LastOffset, t, sharegroup.ErrInvalidAcknowledgeType)
		case at == sharegroup.AckRenew && !renewAck:
			return fmt.Errorf("acknowledgement %d-%d: RENEW without IsRenewAck: %w", a.FirstOffset, a.LastOffset, ErrInvalidRequest)
		}
	}
	return nil
}

func onlyRenewals(acks []Acknowledgement) bool {
	for _, a := range acks {
		for _, t := range a.Types {
			if sharegroup.AcknowledgeType(t) != sharegroup.AckRenew {
				return false
			}
		}
	}
	return true
}

// applyAcknowledgement applies a batch checkAcknowledgement accepted.
func applyAcknowledgement(p *sharegroup.Partition, memberID string, a Acknowledgement, nowMs int64) error {
	if len(a.Types) == 1 {
		return p.Acknowledge(memberID, a.FirstOffset, a.LastOffset, sharegroup.AcknowledgeType(a.Types[0]), nowMs)
	}
	for i, t := range a.Types {
		o := a.FirstOffset + int64(i)
		if err := p.Acknowledge(memberID, o, o, sharegroup.AcknowledgeType(t), nowMs); err != nil {
			return err
		}
	}
	return nil
}

// acquireAll acquires records from each partition, sharing out the
// request's record and byte budgets, and watches the partitions for
// appends on wake; the caller cancels the watches.
func (c *Coordinator) acquireAll(ctx context.Context, req FetchRequest, tps []TopicPartition, wake chan<- struct{}) ([]PartitionResult, func()) {
	var cancels []func()
	out := make([]PartitionResult, 0, len(tps))
	maxRecords, maxBytes := req.MaxRecords, int64(req.MaxBytes)
	for _, tp := range tps {
		r := PartitionResult{TopicPartition: tp, LeaderEpoch: -1}
		part, err := c.opts.Partitions.Partition(tp.Topic, tp.Partition)
		if err == nil {
			cancels = append(cancels, part.Watch(wake))
			r.LeaderEpoch = part.LeaderEpoch()
			if maxRecords > 0 && maxBytes > 0 {
				err = c.acquire(ctx, req, tp, part, &r, maxRecords, maxBytes)
			}
		}
		r.Err = err
		for _, a := range r.Acquired {
			maxRecords -= int(a.LastOffset - a.FirstOffset + 1)
		}
		maxBytes -= int64(len(r.Records))
		out = append(out, r)
	}
	return out, func() {
		for _, cancel := range cancels {
			cancel()
		}
	}
}

// acquireLocked reads whole batches from the first acquirable offset and
// acquires what they hold. The batches may hold records another member has
// acquired: the client keeps only the records in its acquired ranges.
func (c *Coordinator) acquire(ctx context.Context, req FetchRequest, tp TopicPartition, part *partition.Partition, r *PartitionResult, maxRecords int, maxBytes int64) error {
	sp, err := c.lockSharePartition(ctx, partitionKey{req.GroupID, tp}, part)
	if err != nil {
		return err
	}
	defer sp.mu.Unlock()
	p := sp.p
	now := c.nowMs()
	p.ExpireLocks(now)
	offsets := part.Offsets()
	from, ok := p.FirstAcquirable(offsets.LogStartOffset, offsets.HighWatermark)
	if !ok {
		return nil
	}
	read, err := part.Read(from, partition.ReadOptions{MaxBytes: int32(min(maxBytes, shareReadMaxBytes)), MinOneBatch: true, CurrentLeaderEpoch: -1})
	if err != nil {
		return err
	}
	records, err := read.Records.AppendTo(nil)
	read.Records.Release()
	if err != nil {
		return fmt.Errorf("share fetch %s-%d at %d: %w", tp.Topic, tp.Partition, from, err)
	}
	readEnd := from
	for rest := records; len(rest) > 0; {
		_, next, h, err := record.NextBatch(rest)
		if err != nil {
			break // a torn last batch is left for the next fetch
		}
		readEnd, rest = h.NextOffset(), next
	}
	r.Acquired = p.Acquire(req.MemberID, min(readEnd, read.HighWatermark), maxRecords, now)
	if n := len(r.Acquired); n > 0 {
		r.Records = batchesThrough(records, r.Acquired[n-1].LastOffset)
	}
	return nil
}

// shareReadMaxBytes bounds one share partition's read: a fetch acquires at
// most MaxRecords (500 by default) records, so reading the client's whole
// MaxBytes (50 MiB by default) would copy bytes only to cut them off.
// MinOneBatch still returns a larger first batch whole.
const shareReadMaxBytes = 1 << 20

// batchesThrough cuts records after the batch holding lastOffset: the
// batches past it hold no record acquired by this fetch.
func batchesThrough(records []byte, lastOffset int64) []byte {
	end := 0
	for rest := records; len(rest) > 0; {
		batch, next, h, err := record.NextBatch(rest)
		if err != nil {
			break
		}
		end += len(batch)
		if h.LastOffset() >= lastOffset {
			break
		}
		rest = next
	}
	return records[:end]
}

// nextExpiry is how long until the earliest acquisition lock of this node
// expires (a redelivery a waiting fetch may take), at most the lock
// duration.
func (c *Coordinator) nextExpiry() time.Duration {
	now := c.nowMs()
	wait := c.opts.Config.Partition.LockDurationMs
	for _, sp := range c.partitionsOf("") {
		sp.mu.Lock()
		next := int64(-1)
		if sp.p != nil {
			next = sp.p.NextLockExpiryMs()
		}
		sp.mu.Unlock()
		if next >= 0 {
			wait = min(wait, max(next-now, 1))
		}
	}
	return time.Duration(wait) * time.Millisecond
}

// mergeResults joins the acknowledgement results and the fetch results of
// the same partitions.
func mergeResults(acks, fetched []PartitionResult) []PartitionResult {
	byTP := make(map[TopicPartition]int, len(fetched))
	for i, r := range fetched {
		byTP[r.TopicPartition] = i
	}
	for _, a := range acks {
		if i, ok := byTP[a.TopicPartition]; ok {
			fetched[i].AckErr = a.AckErr
			continue
		}
		fetched = append(fetched, a)
	}
	return fetched
}

func sortTopicPartitions(tps []TopicPartition) {
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
}

// releaseSession gives back the records a member still holds in the
// partitions of the session it closed: it will not acknowledge them.
func (c *Coordinator) releaseSession(ctx context.Context, groupID, memberID string, s *session) {
	for _, sp := range c.partitionsOf(groupID) {
		if !s.partitions[sp.key.TopicPartition] {
			continue
		}
		sp.mu.Lock()
		if sp.p != nil && sp.p.ReleaseMember(memberID) > 0 {
			_ = c.persistLocked(ctx, sp) // logged; the records come back at lock expiry anyway
		}
		sp.mu.Unlock()
	}
}

// connectionClosed ends a share session whose client connection closed
// (if it is still the member's session) and releases what its member
// holds, so another member gets the records now, not at lock expiry.
func (c *Coordinator) connectionClosed(groupID, memberID string, s *session) {
	key := sessionKey{groupID, memberID}
	c.mu.Lock()
	current := c.sessions[key] == s
	if current {
		delete(c.sessions, key)
	}
	c.mu.Unlock()
	if current {
		c.releaseSession(c.ctx, groupID, memberID, s)
		c.dropIfNoSessions(groupID)
	}
}
