package controller

import (
	"fmt"
	"slices"

	"github.com/sluicelog/sluice/internal/metadata"
)

// DeleteTopicsRequest deletes topics by name and by id.
type DeleteTopicsRequest struct {
	Names []string
	IDs   []metadata.UUID
}

// DeleteTopicResult is one topic's outcome: results for Names come first,
// then those for IDs, each in request order.
type DeleteTopicResult struct {
	Name    string
	TopicID metadata.UUID
	Err     error
}

// DeleteTopicsResponse has one result per requested name or id.
type DeleteTopicsResponse struct {
	Topics []DeleteTopicResult
}

// DeleteTopics decides a DeleteTopics request: a RemoveTopic record per
// existing topic, which takes its partitions and configs with it. A topic
// named twice (by name, by id, or once each way) fails every time, as in
// Kafka, rather than being deleted by one entry and unknown to the other.
func (c *Controller) DeleteTopics(img *metadata.Image, req DeleteTopicsRequest) ([]metadata.Record, DeleteTopicsResponse) {
	resp := DeleteTopicsResponse{Topics: make([]DeleteTopicResult, 0, len(req.Names)+len(req.IDs))}
	for _, name := range req.Names {
		res := DeleteTopicResult{Name: name}
		if t, ok := img.Topic(name); ok {
			res.TopicID = t.ID
		} else {
			res.Err = fmt.Errorf("%w: topic %q", ErrUnknownTopic, name)
		}
		resp.Topics = append(resp.Topics, res)
	}
	for _, id := range req.IDs {
		res := DeleteTopicResult{TopicID: id}
		if t, ok := img.TopicByID(id); ok {
			res.Name = t.Name
		} else {
			res.Err = fmt.Errorf("%w: %x", ErrUnknownTopicID, id[:])
		}
		resp.Topics = append(resp.Topics, res)
	}
	counts := map[metadata.UUID]int{}
	for _, res := range resp.Topics {
		if res.Err == nil {
			counts[res.TopicID]++
		}
	}
	var records []metadata.Record
	for i := range resp.Topics {
		res := &resp.Topics[i]
		switch {
		case res.Err != nil:
		case counts[res.TopicID] > 1:
			res.Err = fmt.Errorf("%w: topic %q named %d times in the request", ErrInvalidRequest, res.Name, counts[res.TopicID])
		default:
			records = append(records, &metadata.RemoveTopic{TopicID: res.TopicID})
		}
	}
	return records, resp
}

// CreatePartitionsTopic raises one topic's partition count to Count.
type CreatePartitionsTopic struct {
	Name  string
	Count int32
	// Assignments, if not nil, gives the replicas of each new partition in
	// order (len = Count - current count); nil places them automatically.
	Assignments [][]int32
}

// CreatePartitionsRequest adds partitions; ValidateOnly checks only.
type CreatePartitionsRequest struct {
	Topics       []CreatePartitionsTopic
	ValidateOnly bool
}

// CreatePartitionsResult is one topic's outcome, in request order.
type CreatePartitionsResult struct {
	Name string
	Err  error
}

// CreatePartitionsResponse has one result per requested topic.
type CreatePartitionsResponse struct {
	Topics []CreatePartitionsResult
}

// CreatePartitions decides a CreatePartitions request. Counts only grow
// (shrinking would drop records); new partitions keep the topic's
// replication factor, which is that of partition 0.
func (c *Controller) CreatePartitions(img *metadata.Image, req CreatePartitionsRequest) ([]metadata.Record, CreatePartitionsResponse) {
	counts := map[string]int{}
	for _, t := range req.Topics {
		counts[t.Name]++
	}
	placer := newPlacer(img)
	placed := 0
	var records []metadata.Record
	resp := CreatePartitionsResponse{Topics: make([]CreatePartitionsResult, len(req.Topics))}
	for i, t := range req.Topics {
		resp.Topics[i].Name = t.Name
		if counts[t.Name] > 1 {
			resp.Topics[i].Err = fmt.Errorf("%w: topic %q appears %d times in the request", ErrInvalidRequest, t.Name, counts[t.Name])
			continue
		}
		recs, err := addPartitions(img, placer, t, img.NumPartitions()+placed)
		if err != nil {
			resp.Topics[i].Err = fmt.Errorf("topic %q: %w", t.Name, err)
			continue
		}
		if err := checkBudget(placed, len(recs)); err != nil {
			resp.Topics[i].Err = err
			continue
		}
		placed += len(recs)
		if !req.ValidateOnly {
			records = append(records, recs...)
		}
	}
	return records, resp
}

// addPartitions validates one topic's increase and returns the new
// Partition records.
func addPartitions(img *metadata.Image, placer *placer, t CreatePartitionsTopic, slot int) ([]metadata.Record, error) {
	topic, ok := img.Topic(t.Name)
	if !ok {
		return nil, ErrUnknownTopic
	}
	current := int32(len(topic.Partitions))
	switch {
	case t.Count < current:
		return nil, fmt.Errorf("%w: it has %d partitions; the count can only grow, not to %d", ErrInvalidPartitions, current, t.Count)
	case t.Count == current:
		return nil, fmt.Errorf("%w: it already has %d partitions", ErrInvalidPartitions, current)
	case t.Count-current > maxPartitionsPerRequest:
		return nil, fmt.Errorf("%w: %d new partitions, at most %d per request", ErrTooManyPartitions, t.Count-current, maxPartitionsPerRequest)
	}
	rf := len(topic.Partitions[0].Replicas)
	assignments, err := newAssignments(img, placer, t.Assignments, current, int(t.Count-current), rf, slot)
	if err != nil {
		return nil, err
	}
	alive := aliveIn(img, nil)
	records := make([]metadata.Record, len(assignments))
	for i, replicas := range assignments {
		isr := filter(replicas, alive)
		records[i] = &metadata.Partition{
			TopicID: topic.ID, Partition: current + int32(i), Replicas: replicas, ISR: isr, Leader: isr[0],
		}
	}
	return records, nil
}

// newAssignments validates the explicit assignments of added partitions,
// or places them. The first new partition's id is first.
func newAssignments(img *metadata.Image, placer *placer, explicit [][]int32, first int32, added, rf, slot int) ([][]int32, error) {
	if explicit == nil {
		return placer.place(slot, added, rf)
	}
	if len(explicit) != added {
		return nil, fmt.Errorf("%w: %d assignments for %d new partitions", ErrInvalidReplicaAssignment, len(explicit), added)
	}
	out := make([][]int32, added)
	for i, replicas := range explicit {
		if err := checkReplicas(img, first+int32(i), replicas, rf); err != nil {
			return nil, err
		}
		out[i] = slices.Clone(replicas)
	}
	return out, nil
}
