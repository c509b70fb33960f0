package api

import "fmt"

// A share group and a consumer group cannot have one id: both live in the
// same __consumer_offsets partition, so their coordinators run on the
// same node, and Kafka keeps one group per id whatever its type. The
// share side refuses the id of a consumer group (checkNotOtherGroupType);
// the requests below refuse a share group's id, with Kafka 4.1's answers:
// JoinGroup INCONSISTENT_GROUP_PROTOCOL, ConsumerGroupHeartbeat,
// OffsetCommit and TxnOffsetCommit GROUP_ID_NOT_FOUND. Only the requests that may create a
// group or a member are checked (a join, a commit without a generation):
// the others find no such group or member in the consumer-group
// coordinator and are refused there, without waiting on the share
// groups' lock, with Kafka 4.1's answers too: Heartbeat, SyncGroup and
// each LeaveGroup member UNKNOWN_MEMBER_ID, OffsetFetch no offsets. The two coordinators decide apart, so a share group and a
// consumer group created at the same instant can still share an id.

// errShareGroupID says groupID is a share group of this node; callers wrap
// it in the error their API answers.
func errShareGroupID(b *Broker, groupID string) error {
	if b.Shares == nil || !b.Shares.IsShareGroup(groupID) {
		return nil
	}
	return fmt.Errorf("group %q is a share group", groupID)
}
