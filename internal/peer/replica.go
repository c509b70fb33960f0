package peer

import (
	"context"
	"fmt"

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
// partition package's LeaderClient over the Kafka protocol.
type ReplicaClient struct {
	conn *Conn
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

// Fetch sends one follower fetch (a full fetch each time, without a fetch
// session: the partitions a follower fetches are few and the request small
// next to the records it brings back).
func (c *ReplicaClient) Fetch(ctx context.Context, in partition.ReplicaFetchRequest) ([]partition.ReplicaFetchResult, error) {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(fetchVersion)
	req.ReplicaID = in.ReplicaID
	req.MaxWaitMillis = in.MaxWaitMs
	req.MinBytes = in.MinBytes
	req.MaxBytes = in.MaxBytes
	req.SessionID, req.SessionEpoch = 0, -1 // no session
	for _, p := range in.Partitions {
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
	raw, err := c.conn.Request(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := raw.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return nil, fmt.Errorf("peer %s: fetch: %w", c.conn.Addr(), kerr.ErrorForCode(resp.ErrorCode))
	}
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

// OffsetsForLeaderEpoch asks the leader where each queried epoch ends.
func (c *ReplicaClient) OffsetsForLeaderEpoch(ctx context.Context, replicaID int32, queries []partition.EpochQuery) ([]partition.EpochAnswer, error) {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.SetVersion(offsetForLeaderEpochVersion)
	req.ReplicaID = replicaID
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
