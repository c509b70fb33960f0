package group

import (
	"encoding/binary"
	"fmt"
)

// Where the two protocols meet. Kafka 4 can run a classic member inside a
// consumer-protocol group and convert a group between the protocols while
// its members roll (group.consumer.migration.policy). Sluice does not yet:
// a classic JoinGroup to a consumer group that has members, and a
// ConsumerGroupHeartbeat to a classic group that has members, are refused
// with the errors Kafka gives when its migration policy forbids the mix
// (INCONSISTENT_GROUP_PROTOCOL and GROUP_ID_NOT_FOUND). An empty group
// (offsets only) changes protocol freely, keeping its offsets, as in Kafka.

// classicJoinOfConsumerGroup lets a classic JoinGroup into g: refused
// while g is a consumer group with members, converting it when empty.
func (s *Shard) classicJoinOfConsumerGroup(g *Group) error {
	if g.consumer == nil {
		return nil
	}
	if len(g.consumer.members) > 0 {
		return fmt.Errorf("group %q is a consumer-protocol group with members; mixed groups are not supported: %w", g.id, ErrInconsistentGroupProtocol)
	}
	s.emitConsumerGroupTombstones(g)
	g.consumer = nil
	g.protocolType = ""
	g.state = stateEmpty
	return nil
}

// describeConsumerAsClassic is a consumer group as DescribeGroups shows
// it: protocol type "consumer", the assignor as the protocol, the KIP-848
// state, and each member's subscription and current assignment encoded as
// a classic consumer's (ConsumerProtocolSubscription and
// ConsumerProtocolAssignment v0), so tools that compute lag per member
// from DescribeGroups (kadm's Lag) work unchanged. Kafka 4.1 answers
// DescribeGroups for a group that is not classic as Dead (v6:
// GROUP_ID_NOT_FOUND); ConsumerGroupDescribe has the epochs.
func (g *Group) describeConsumerAsClassic() GroupDescription {
	c := g.consumer
	d := GroupDescription{GroupID: g.id, State: c.state(), ProtocolType: GroupTypeConsumer, Protocol: c.assignor}
	for _, m := range c.sortedMembers() {
		d.Members = append(d.Members, MemberDescription{MemberID: m.id, GroupInstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			Metadata: classicSubscription(m.subscribedTopicNames), Assignment: c.classicAssignment(m.assigned)})
	}
	return d
}

// classicSubscription is a ConsumerProtocolSubscription v0: version,
// topics, null user data.
func classicSubscription(topics []string) []byte {
	b := binary.BigEndian.AppendUint16(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(topics)))
	for _, t := range topics {
		b = appendString(b, t)
	}
	return binary.BigEndian.AppendUint32(b, 0xffffffff)
}

// classicAssignment is a ConsumerProtocolAssignment v0 of a set: version,
// topics by name with their partitions, null user data. A topic whose name
// is not known (deleted since) is left out.
func (c *consumerGroup) classicAssignment(set partitionSet) []byte {
	var topics []ConsumerTopicPartitions
	for _, t := range topicPartitionsOf(set) {
		if _, ok := c.topicNames[t.TopicID]; ok {
			topics = append(topics, t)
		}
	}
	b := binary.BigEndian.AppendUint16(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(topics)))
	for _, t := range topics {
		b = appendString(b, c.topicNames[t.TopicID])
		b = binary.BigEndian.AppendUint32(b, uint32(len(t.Partitions)))
		for _, p := range t.Partitions {
			b = binary.BigEndian.AppendUint32(b, uint32(p))
		}
	}
	return binary.BigEndian.AppendUint32(b, 0xffffffff)
}
