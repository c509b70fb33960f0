package peer

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/partition"
)

// The versions a follower sends. Brokers of one cluster run the same
// build, so these are the newest the leader serves; they change together
// with internal/api's handlers.
const (
	fetchVersion                = 12 // the newest without topic ids
	offsetForLeaderEpochVersion = 4
)

// ReplicaClient is a follower's connection to a partition leader: the
// partition package's LeaderClient over the Kafka protocol. Its fetches use
// an incremental fetch session (KIP-227): after the first, full fetch a
// request names only the partitions whose position changed, and the
// leader answers only those with something new, so a follower of many
// idle partitions sends and parses little on every round.
type ReplicaClient struct {
	conn    *Conn
	session fetchSession
}

// fetchSession is the follower's half of a fetch session: what the
// leader's session holds for each partition, as last sent.
type fetchSession struct {
	id, epoch int32 // id 0: none yet
	sent      map[topicPartition]partition.ReplicaFetchPartition
}

type topicPartition struct {
	topic     string
	partition int32
}

var _ partition.LeaderClient = (*ReplicaClient)(nil)

// DialReplica connects to the leader at addr.
func DialReplica(ctx context.Context, addr string, opts Options) (*ReplicaClient, error) {
	c, err := Dial(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	return &ReplicaClient{conn: c}, nil
}

// Close closes the connection.
func (c *ReplicaClient) Close() error { return c.conn.Close() }

// Fetch sends one follower fetch: a full one that creates a session the
// first time, incremental ones after. A session error fails the call, and
// the fetcher's new connection starts a new session.
func (c *ReplicaClient) Fetch(ctx context.Context, in partition.ReplicaFetchRequest) ([]partition.ReplicaFetchResult, error) {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(fetchVersion)
	req.ReplicaID = in.ReplicaID
	req.MaxWaitMillis = in.MaxWaitMs
	req.MinBytes = in.MinBytes
	req.MaxBytes = in.MaxBytes
	req.SessionID, req.SessionEpoch = c.session.id, c.session.epoch // 0, 0: create one
	wanted := make(map[topicPartition]partition.ReplicaFetchPartition, len(in.Partitions))
	// A topic's partitions go together: addFetchPartition appends to the
	// last topic of the request.
	parts := slices.Clone(in.Partitions)
	slices.SortStableFunc(parts, func(a, b partition.ReplicaFetchPartition) int { return cmp.Compare(a.Topic, b.Topic) })
	for _, p := range parts {
		key := topicPartition{p.Topic, p.Partition}
		wanted[key] = p
		if prev, ok := c.session.sent[key]; c.session.id != 0 && ok && prev == p {
			continue // the leader's session has it as it is
		}
		addFetchPartition(req, p)
	}
	if c.session.id != 0 {
		for key := range c.session.sent {
			if _, ok := wanted[key]; !ok {
				forgetFetchPartition(req, key)
			}
		}
	}
	raw, err := c.conn.Request(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := raw.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		c.session = fetchSession{}
		return nil, fmt.Errorf("peer %s: fetch: %w", c.conn.Addr(), kerr.ErrorForCode(resp.ErrorCode))
	}
	c.advanceSession(resp.SessionID, wanted)
	var out []partition.ReplicaFetchResult
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, partition.ReplicaFetchResult{Topic: t.Topic, Partition: p.Partition,
				Err: domainError(p.ErrorCode), HighWatermark: p.HighWatermark, LogStartOffset: p.LogStartOffset,
				Records: p.RecordBatches})
		}
	}
	return out, nil
}

// advanceSession records what the leader's session now holds. A leader
// that could not make a session (its cache full) answers id 0, and the next
// fetch is full again and asks for one again.
func (c *ReplicaClient) advanceSession(id int32, sent map[topicPartition]partition.ReplicaFetchPartition) {
	if id == 0 {
		c.session = fetchSession{}
		return
	}
	next := c.session.epoch + 1
	if c.session.id != id || next == math.MaxInt32 {
		next = 1 // a new session; an epoch wraps to 1, never back to 0
	}
	c.session = fetchSession{id: id, epoch: next, sent: sent}
}

func addFetchPartition(req *kmsg.FetchRequest, p partition.ReplicaFetchPartition) {
	if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != p.Topic {
		t := kmsg.NewFetchRequestTopic()
		t.Topic = p.Topic
		req.Topics = append(req.Topics, t)
	}
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.LogStartOffset = p.Partition, p.FetchOffset, p.LogStartOffset
	rp.CurrentLeaderEpoch, rp.PartitionMaxBytes = p.CurrentLeaderEpoch, p.MaxBytes
	t := &req.Topics[len(req.Topics)-1]
	t.Partitions = append(t.Partitions, rp)
}

func forgetFetchPartition(req *kmsg.FetchRequest, key topicPartition) {
	for i := range req.ForgottenTopics {
		if req.ForgottenTopics[i].Topic == key.topic {
			req.ForgottenTopics[i].Partitions = append(req.ForgottenTopics[i].Partitions, key.partition)
			return
		}
	}
	t := kmsg.NewFetchRequestForgottenTopic()
	t.Topic, t.Partitions = key.topic, []int32{key.partition}
	req.ForgottenTopics = append(req.ForgottenTopics, t)
}

// OffsetsForLeaderEpoch asks the leader where each queried epoch ends.
func (c *ReplicaClient) OffsetsForLeaderEpoch(ctx context.Context, replicaID int32, queries []partition.EpochQuery) ([]partition.EpochAnswer, error) {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.SetVersion(offsetForLeaderEpochVersion)
	req.ReplicaID = replicaID
	queries = slices.Clone(queries)
	slices.SortStableFunc(queries, func(a, b partition.EpochQuery) int { return cmp.Compare(a.Topic, b.Topic) })
	for _, q := range queries {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != q.Topic {
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = q.Topic
			req.Topics = append(req.Topics, t)
		}
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = q.Partition, q.CurrentLeaderEpoch, q.LeaderEpoch
		t := &req.Topics[len(req.Topics)-1]
		t.Partitions = append(t.Partitions, rp)
	}
	raw, err := c.conn.Request(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := raw.(*kmsg.OffsetForLeaderEpochResponse)
	var out []partition.EpochAnswer
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, partition.EpochAnswer{Topic: t.Topic, Partition: p.Partition,
				Err: domainError(p.ErrorCode), LeaderEpoch: p.LeaderEpoch, EndOffset: p.EndOffset})
		}
	}
	return out, nil
}

// domainError turns a leader's error code into the partition package's
// error the fetcher acts on; codes it has no use for stay Kafka errors.
func domainError(code int16) error {
	if code == 0 {
		return nil
	}
	kafkaErr := kerr.ErrorForCode(code)
	var domain error
	switch code {
	case kerr.NotLeaderForPartition.Code:
		domain = partition.ErrNotLeader
	case kerr.FencedLeaderEpoch.Code:
		domain = partition.ErrFencedLeaderEpoch
	case kerr.UnknownLeaderEpoch.Code:
		domain = partition.ErrUnknownLeaderEpoch
	case kerr.UnknownTopicOrPartition.Code:
		domain = partition.ErrUnknownTopicOrPartition
	case kerr.OffsetOutOfRange.Code:
		domain = log.ErrOffsetOutOfRange
	default:
		return fmt.Errorf("leader answered %w", kafkaErr)
	}
	return fmt.Errorf("leader answered %w: %w", kafkaErr, domain)
}
