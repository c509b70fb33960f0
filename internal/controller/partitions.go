package controller

import (
	"fmt"
	"slices"

	"github.com/sluicelog/sluice/internal/metadata"
)

// AlterPartitionItem is a leader's proposal for one partition's ISR, with
// the epochs of the state it based the proposal on.
type AlterPartitionItem struct {
	TopicID        metadata.UUID
	Partition      int32
	LeaderEpoch    int32
	PartitionEpoch int32
	NewISR         []int32
}

// AlterPartitionRequest is a partition leader's ISR changes.
type AlterPartitionRequest struct {
	BrokerID    int32
	BrokerEpoch int64
	Partitions  []AlterPartitionItem
}

// AlterPartitionResult is one partition's outcome; without Err it carries
// the state the partition has once the records commit, which the leader
// adopts (its ISR and partition epoch).
type AlterPartitionResult struct {
	TopicID        metadata.UUID
	Partition      int32
	Err            error
	Leader         int32
	LeaderEpoch    int32
	ISR            []int32
	PartitionEpoch int32
}

// AlterPartitionResponse has a request-level Err (an unknown broker or a
// stale broker epoch fails everything) or one result per item.
type AlterPartitionResponse struct {
	Err        error
	Partitions []AlterPartitionResult
}

// AlterPartition decides ISR changes proposed by partition leaders. A
// proposal is applied only if it was made against the partition's current
// state: the proposer must be the leader at the current leader epoch
// (else ErrFencedLeaderEpoch: a newer leader exists) and have seen the
// current partition epoch (else ErrInvalidUpdateVersion: the controller
// changed the partition since, e.g. it dropped a fenced broker from the
// ISR, and the leader must catch up before proposing again). The new ISR
// must hold the leader, only replicas of the partition, and only live
// brokers (ErrIneligibleReplica): a fenced broker may not re-enter it.
func (c *Controller) AlterPartition(img *metadata.Image, req AlterPartitionRequest) ([]metadata.Record, AlterPartitionResponse) {
	if _, err := checkBroker(img, req.BrokerID, req.BrokerEpoch); err != nil {
		return nil, AlterPartitionResponse{Err: err}
	}
	type key struct {
		topic     metadata.UUID
		partition int32
	}
	counts := map[key]int{}
	for _, item := range req.Partitions {
		counts[key{item.TopicID, item.Partition}]++
	}
	alive := aliveIn(img, nil)
	var records []metadata.Record
	resp := AlterPartitionResponse{Partitions: make([]AlterPartitionResult, len(req.Partitions))}
	for i, item := range req.Partitions {
		res := &resp.Partitions[i]
		res.TopicID, res.Partition = item.TopicID, item.Partition
		if n := counts[key{item.TopicID, item.Partition}]; n > 1 {
			res.Err = fmt.Errorf("%w: partition %d named %d times", ErrInvalidRequest, item.Partition, n)
			continue
		}
		var rec *metadata.PartitionChange
		rec, res.Err = alterOne(img, req.BrokerID, item, alive, res)
		records = appendChange(records, rec)
	}
	return records, resp
}

// alterOne validates one proposal and fills res with the resulting state.
func alterOne(img *metadata.Image, brokerID int32, item AlterPartitionItem, alive liveness, res *AlterPartitionResult) (*metadata.PartitionChange, error) {
	t, ok := img.TopicByID(item.TopicID)
	if !ok {
		return nil, fmt.Errorf("%w: %x", ErrUnknownTopicID, item.TopicID[:])
	}
	if item.Partition < 0 || int(item.Partition) >= len(t.Partitions) {
		return nil, fmt.Errorf("%w: %s-%d", ErrUnknownTopic, t.Name, item.Partition)
	}
	p := t.Partitions[item.Partition]
	if item.LeaderEpoch != p.LeaderEpoch || brokerID != p.Leader {
		return nil, fmt.Errorf("%w: %s-%d is led by %d at epoch %d, not by %d at epoch %d",
			ErrFencedLeaderEpoch, t.Name, item.Partition, p.Leader, p.LeaderEpoch, brokerID, item.LeaderEpoch)
	}
	if item.PartitionEpoch != p.PartitionEpoch {
		return nil, fmt.Errorf("%w: %s-%d is at partition epoch %d, the proposal saw %d",
			ErrInvalidUpdateVersion, t.Name, item.Partition, p.PartitionEpoch, item.PartitionEpoch)
	}
	if err := checkISR(p, item.NewISR, alive); err != nil {
		return nil, fmt.Errorf("%s-%d: %w", t.Name, item.Partition, err)
	}
	res.Leader, res.LeaderEpoch, res.ISR, res.PartitionEpoch = p.Leader, p.LeaderEpoch, p.ISR, p.PartitionEpoch
	if slices.Equal(item.NewISR, p.ISR) {
		return nil, nil
	}
	res.ISR, res.PartitionEpoch = slices.Clone(item.NewISR), p.PartitionEpoch+1
	return &metadata.PartitionChange{
		TopicID: t.ID, Partition: item.Partition, Leader: metadata.NoLeaderChange, ISR: res.ISR,
	}, nil
}

// checkISR validates a proposed ISR against the partition.
func checkISR(p *metadata.PartitionImage, isr []int32, alive liveness) error {
	if !slices.Contains(isr, p.Leader) {
		return fmt.Errorf("%w: ISR %v does not contain the leader %d", ErrInvalidRequest, isr, p.Leader)
	}
	for i, r := range isr {
		if slices.Contains(isr[:i], r) {
			return fmt.Errorf("%w: ISR %v names %d twice", ErrInvalidRequest, isr, r)
		}
		if !slices.Contains(p.Replicas, r) {
			return fmt.Errorf("%w: ISR %v names %d, which is not a replica (%v)", ErrInvalidRequest, isr, r, p.Replicas)
		}
		if !alive(r) {
			return fmt.Errorf("%w: broker %d is fenced or unregistered", ErrIneligibleReplica, r)
		}
	}
	return nil
}
