package group

import "fmt"

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
// it: protocol type "consumer", the KIP-848 state, members without
// metadata or assignment (ConsumerGroupDescribe has those), as Kafka does.
func (g *Group) describeConsumerAsClassic() GroupDescription {
	d := GroupDescription{GroupID: g.id, State: g.consumer.state(), ProtocolType: GroupTypeConsumer}
	for _, m := range g.consumer.sortedMembers() {
		d.Members = append(d.Members, MemberDescription{MemberID: m.id, GroupInstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost})
	}
	return d
}
