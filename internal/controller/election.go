package controller

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/metadata"
)

// liveness says whether a broker may lead a partition or sit in an ISR:
// registered and unfenced, as the decision sees it (a broker being fenced
// by this very decision is already dead to it).
type liveness func(id int32) bool

// aliveIn returns the liveness of img's brokers, overridden for the brokers
// this decision fences (false) or unfences (true).
func aliveIn(img *metadata.Image, override map[int32]bool) liveness {
	return func(id int32) bool {
		if alive, ok := override[id]; ok {
			return alive
		}
		b, ok := img.Broker(id)
		return ok && !b.Fenced
	}
}

// partitionState is the leader and ISR a decision wants a partition to have.
type partitionState struct {
	leader int32
	isr    []int32
}

// reelect recomputes a partition's leader and ISR after brokers died or
// came back. Dead members leave the ISR; the leader stays if it is still
// an ISR member, else the first live ISR member in replica order (so the
// preferred replica wins when it can) takes over.
//
// When no ISR member is alive the ISR is not emptied: it keeps the last
// leader (the member that certainly has every committed record), so the
// partition can come back without losing data when that broker returns,
// as Kafka does. The partition is leaderless until then, unless unclean
// election is allowed, which makes the first live replica the leader and
// sole ISR member, accepting that records it never fetched are lost.
func reelect(p *metadata.PartitionImage, alive liveness, unclean bool) partitionState {
	isr := filter(p.ISR, alive)
	if len(isr) > 0 {
		if slices.Contains(isr, p.Leader) {
			return partitionState{p.Leader, isr}
		}
		return partitionState{firstInReplicaOrder(p.Replicas, isr), isr}
	}
	if unclean {
		for _, r := range p.Replicas {
			if alive(r) {
				return partitionState{r, []int32{r}}
			}
		}
	}
	keep := p.ISR
	if slices.Contains(p.ISR, p.Leader) {
		keep = []int32{p.Leader}
	}
	return partitionState{metadata.NoLeader, keep}
}

// firstInReplicaOrder returns the first replica that is in isr, or isr[0]
// if the ISR names a broker outside the replicas (never, by AlterPartition's
// checks; kept total so a bad image cannot make it panic).
func firstInReplicaOrder(replicas, isr []int32) int32 {
	for _, r := range replicas {
		if slices.Contains(isr, r) {
			return r
		}
	}
	return isr[0]
}

func filter(ids []int32, keep liveness) []int32 {
	out := make([]int32, 0, len(ids))
	for _, id := range ids {
		if keep(id) {
			out = append(out, id)
		}
	}
	return out
}

// change returns the record moving partition p of topic to want, or nil if
// it is already there.
func change(topic metadata.UUID, id int32, p *metadata.PartitionImage, want partitionState) *metadata.PartitionChange {
	sameLeader := want.leader == p.Leader
	sameISR := slices.Equal(want.isr, p.ISR)
	if sameLeader && sameISR {
		return nil
	}
	rec := &metadata.PartitionChange{TopicID: topic, Partition: id, Leader: metadata.NoLeaderChange}
	if !sameLeader {
		rec.Leader = want.leader
	}
	if !sameISR {
		rec.ISR = want.isr
	}
	return rec
}

// uncleanEnabled resolves unclean.leader.election.enable for a topic: its
// own override, else the cluster-wide dynamic default, else the
// controller's static setting.
func (c *Controller) uncleanEnabled(img *metadata.Image, topic string) bool {
	topicConfigs := img.Configs(metadata.ConfigResourceTopic, topic)
	cluster := img.Configs(metadata.ConfigResourceBroker, "")
	return c.uncleanFrom(topicConfigs, cluster)
}

func (c *Controller) uncleanFrom(topicConfigs, cluster map[string]string) bool {
	_, topicSet := topicConfigs[config.UncleanLeaderElectionEnable]
	_, clusterSet := cluster[config.UncleanLeaderElectionEnable]
	if !topicSet && !clusterSet {
		return c.cfg.UncleanLeaderElectionEnable
	}
	values := config.TopicValues{Overrides: topicConfigs, BrokerDefaults: cluster}
	return values.Bool(config.UncleanLeaderElectionEnable)
}

// reelectWhere emits the changes reelect wants for every partition that
// touches says may need one, topic by topic in name order so the records
// are deterministic.
func (c *Controller) reelectWhere(img *metadata.Image, alive liveness, touches func(*metadata.PartitionImage) bool) []metadata.Record {
	var records []metadata.Record
	for _, t := range img.Topics() {
		unclean, resolved := false, false
		for id, p := range t.Partitions {
			if !touches(p) {
				continue
			}
			if !resolved {
				unclean, resolved = c.uncleanEnabled(img, t.Name), true
			}
			if rec := change(t.ID, int32(id), p, reelect(p, alive, unclean)); rec != nil {
				records = append(records, rec)
			}
		}
	}
	return records
}

// ElectionType is the kind of election ElectLeaders runs, numbered as in
// Kafka's ElectLeaders request.
type ElectionType int8

const (
	// ElectPreferred moves leadership to the first replica if it is live
	// and in the ISR.
	ElectPreferred ElectionType = 0
	// ElectUnclean gives a leaderless partition a leader: a live ISR
	// member if any, else any live replica.
	ElectUnclean ElectionType = 1
)

// TopicPartitions names partitions of one topic.
type TopicPartitions struct {
	Topic      string
	Partitions []int32
}

// ElectLeadersRequest asks for elections on the named partitions, or on
// every partition when Partitions is nil.
type ElectLeadersRequest struct {
	Type       ElectionType
	Partitions []TopicPartitions
}

// ElectionResult is one partition's outcome; Err is nil when a new leader
// was chosen.
type ElectionResult struct {
	Topic     string
	Partition int32
	Err       error
}

// ElectLeadersResponse lists one result per named partition. For an
// all-partitions request it lists only partitions that needed an election,
// as Kafka does.
type ElectLeadersResponse struct {
	Results []ElectionResult
}

// ElectLeaders runs the requested elections.
func (c *Controller) ElectLeaders(img *metadata.Image, req ElectLeadersRequest) ([]metadata.Record, ElectLeadersResponse) {
	alive := aliveIn(img, nil)
	var records []metadata.Record
	var resp ElectLeadersResponse
	if req.Partitions == nil {
		for _, t := range img.Topics() {
			for id, p := range t.Partitions {
				rec, err := electOne(t.ID, int32(id), p, req.Type, alive)
				if errors.Is(err, ErrElectionNotNeeded) {
					continue
				}
				records = appendChange(records, rec)
				resp.Results = append(resp.Results, ElectionResult{t.Name, int32(id), err})
			}
		}
		return records, resp
	}
	seen := map[TopicPartition]bool{}
	for _, tp := range req.Partitions {
		t, topicKnown := img.Topic(tp.Topic)
		for _, id := range tp.Partitions {
			key := TopicPartition{tp.Topic, id}
			if seen[key] {
				continue
			}
			seen[key] = true
			var rec *metadata.PartitionChange
			err := fmt.Errorf("%w: %s-%d", ErrUnknownTopic, tp.Topic, id)
			if topicKnown && id >= 0 && int(id) < len(t.Partitions) {
				rec, err = electOne(t.ID, id, t.Partitions[id], req.Type, alive)
			}
			records = appendChange(records, rec)
			resp.Results = append(resp.Results, ElectionResult{tp.Topic, id, err})
		}
	}
	return records, resp
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func appendChange(records []metadata.Record, rec *metadata.PartitionChange) []metadata.Record {
	if rec == nil {
		return records
	}
	return append(records, rec)
}

// electOne decides one partition's election. Unclean is allowed here
// whatever the topic config says: an operator asked for it by name.
func electOne(topic metadata.UUID, id int32, p *metadata.PartitionImage, typ ElectionType, alive liveness) (*metadata.PartitionChange, error) {
	switch typ {
	case ElectPreferred:
		preferred := p.Replicas[0]
		if p.Leader == preferred {
			return nil, fmt.Errorf("%w: partition %d is led by its preferred replica %d", ErrElectionNotNeeded, id, preferred)
		}
		if !alive(preferred) || !slices.Contains(p.ISR, preferred) {
			return nil, fmt.Errorf("%w: partition %d: replica %d is fenced or out of the ISR %v", ErrPreferredLeaderNotAvailable, id, preferred, p.ISR)
		}
		return change(topic, id, p, partitionState{preferred, p.ISR}), nil
	case ElectUnclean:
		if p.Leader != metadata.NoLeader {
			return nil, fmt.Errorf("%w: partition %d has leader %d", ErrElectionNotNeeded, id, p.Leader)
		}
		want := reelect(p, alive, true)
		if want.leader == metadata.NoLeader {
			return nil, fmt.Errorf("%w: partition %d: no replica of %v is alive", ErrEligibleLeadersNotAvailable, id, p.Replicas)
		}
		return change(topic, id, p, want), nil
	}
	return nil, fmt.Errorf("%w: election type %d", ErrInvalidRequest, typ)
}
