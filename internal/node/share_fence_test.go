package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestNodeShareStaleLeaderCannotWriteADeletedGroupBack: member a holds
// records 0-9 when the group's state is deleted by DeleteShareGroupState,
// sent here as a group coordinator on another node sends it for
// DeleteGroups, so this node's leader still caches the share partition.
// a's acknowledgement is then refused with a retriable error and writes
// nothing back (ReadShareGroupState answers INVALID_REQUEST: no state);
// the leader dropped its copy, so a's next fetch fails the same way
// instead of serving it. After DeleteGroups, a new group of the same id
// starts clean, its partitions initialized by its first heartbeat.
func TestNodeShareStaleLeaderCannotWriteADeletedGroupBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, a := memberHoldingTen(t, ctx)

	del := kmsg.NewPtrDeleteShareGroupStateRequest()
	del.GroupID = a.group
	del.Topics = []kmsg.DeleteShareGroupStateRequestTopic{{TopicID: a.topic,
		Partitions: []kmsg.DeleteShareGroupStateRequestTopicPartition{{Partition: 0}}}}
	if resp, err := del.RequestWith(ctx, client(t, n)); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("DeleteShareGroupState: %v %+v", err, resp)
	}
	if err := a.acknowledge(ctx, 0, 4, 1); !errors.Is(err, kerr.CoordinatorNotAvailable) {
		t.Fatalf("acknowledging the deleted group's records: %v, want COORDINATOR_NOT_AVAILABLE", err)
	}
	read := kmsg.NewPtrReadShareGroupStateRequest()
	read.GroupID = a.group
	read.Topics = []kmsg.ReadShareGroupStateRequestTopic{{TopicID: a.topic,
		Partitions: []kmsg.ReadShareGroupStateRequestTopicPartition{{Partition: 0, LeaderEpoch: -1}}}}
	resp, err := read.RequestWith(ctx, client(t, n))
	if err != nil {
		t.Fatal(err)
	}
	if rp := resp.Topics[0].Partitions[0]; rp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("the deleted state was written back: ReadShareGroupState %v, start offset %d", kerr.ErrorForCode(rp.ErrorCode), rp.StartOffset)
	} else if rp.StartOffset != 0 || rp.StateEpoch != 0 {
		// Kafka's error answer carries only the code and message.
		t.Fatalf("ReadShareGroupState's error answer has start offset %d, state epoch %d; want Kafka's zeros", rp.StartOffset, rp.StateEpoch)
	}
	if code := a.fetchCode(ctx); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("fetching after the delete: %v, want COORDINATOR_NOT_AVAILABLE", kerr.ErrorForCode(code))
	}

	a.epoch = -1
	a.heartbeat(ctx, nil)
	if _, err := kadm.NewClient(client(t, n)).DeleteGroup(ctx, a.group); err != nil {
		t.Fatalf("deleting the group: %v", err)
	}
	b := &shareMember{t: t, cl: client(t, n), group: a.group, id: "member-b"}
	b.heartbeat(ctx, []string{"inbox"})
	if got := acquiredString(b.fetch(ctx, 1000)); got != "[0-9 delivery 1]" {
		t.Fatalf("the new group acquired %s, want [0-9 delivery 1]", got)
	}
}

// fetchCode sends a ShareFetch of partition 0 without waiting and returns
// its partition's error code.
func (m *shareMember) fetchCode(ctx context.Context) int16 {
	m.t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &m.group, &m.id, m.sess
	req.MaxBytes, req.MaxRecords = 1<<20, 100
	resp, err := req.RequestWith(ctx, m.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		m.t.Fatalf("share fetch of %s: %v %+v", m.id, err, resp)
	}
	m.sess++
	return resp.Topics[0].Partitions[0].ErrorCode
}

// TestNodeShareStaleLeaderCannotWriteIntoARecreatedGroup: the window the
// test above leaves open. Member a has accepted 0-4 (the state is in a
// state epoch above 0) and holds 5-9 when a group coordinator elsewhere
// deletes the group and a new group of the same id is assigned the
// partition, which initializes it again in state epoch 0; this leader,
// with a's session still open, is told of neither. a's acknowledgement
// of 5-9 must not carry the old group's offsets into the new state: the
// share coordinator refuses the write (this copy was never read from the
// new state), the acknowledgement is answered NOT_LEADER_OR_FOLLOWER,
// the new state stays as initialized, and the leader reads it again, so
// the next fetch starts the new group at share.auto.offset.reset.
func TestNodeShareStaleLeaderCannotWriteIntoARecreatedGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, a := memberHoldingTen(t, ctx)
	if err := a.acknowledge(ctx, 0, 4, 1); err != nil {
		t.Fatalf("acknowledging 0-4: %v", err)
	}
	if sum := shareStateSummary(ctx, t, n, a); sum.StateEpoch < 1 || sum.StartOffset != 5 {
		t.Fatalf("the old group's state %+v, want start offset 5 in a state epoch above 0", sum)
	}

	del := kmsg.NewPtrDeleteShareGroupStateRequest()
	del.GroupID = a.group
	del.Topics = []kmsg.DeleteShareGroupStateRequestTopic{{TopicID: a.topic,
		Partitions: []kmsg.DeleteShareGroupStateRequestTopicPartition{{Partition: 0}}}}
	if resp, err := del.RequestWith(ctx, client(t, n)); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("DeleteShareGroupState: %v %+v", err, resp)
	}
	initialize := kmsg.NewPtrInitializeShareGroupStateRequest()
	initialize.GroupID = a.group
	initialize.Topics = []kmsg.InitializeShareGroupStateRequestTopic{{TopicID: a.topic,
		Partitions: []kmsg.InitializeShareGroupStateRequestTopicPartition{{Partition: 0, StateEpoch: 0, StartOffset: -1}}}}
	if resp, err := initialize.RequestWith(ctx, client(t, n)); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("InitializeShareGroupState: %v %+v", err, resp)
	}

	if err := a.acknowledge(ctx, 5, 9, 1); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("acknowledging the old group's records into the new state: %v, want NOT_LEADER_OR_FOLLOWER", err)
	}
	if sum := shareStateSummary(ctx, t, n, a); sum.StateEpoch != 0 || sum.StartOffset != -1 {
		t.Fatalf("the new group's state after the stale acknowledgement %+v, want state epoch 0 and no start offset", sum)
	}
	if got := acquiredString(a.fetch(ctx, 1000)); got != "[0-9 delivery 1]" {
		t.Fatalf("after reading the new state the leader acquired %s, want [0-9 delivery 1]", got)
	}
}

// shareStateSummary is ReadShareGroupStateSummary of m's partition 0,
// which records no leader epoch.
func shareStateSummary(ctx context.Context, t *testing.T, n *Node, m *shareMember) kmsg.ReadShareGroupStateSummaryResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrReadShareGroupStateSummaryRequest()
	req.GroupID = m.group
	req.Topics = []kmsg.ReadShareGroupStateSummaryRequestTopic{{TopicID: m.topic,
		Partitions: []kmsg.ReadShareGroupStateSummaryRequestTopicPartition{{Partition: 0, LeaderEpoch: -1}}}}
	resp, err := req.RequestWith(ctx, client(t, n))
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("ReadShareGroupStateSummary: %v %+v", err, resp)
	}
	return resp.Topics[0].Partitions[0]
}

// memberHoldingTen starts a node with a one-partition topic "inbox" of 10
// records and a share member of "inbox-group" that has acquired all ten.
func memberHoldingTen(t *testing.T, ctx context.Context) (*Node, *shareMember) {
	t.Helper()
	n := startNode(t, t.TempDir(), "share.auto.offset.reset=earliest")
	shareTopic(t, ctx, n, "inbox", 10)
	a := &shareMember{t: t, cl: client(t, n), group: "inbox-group", id: "member-a"}
	a.heartbeat(ctx, []string{"inbox"})
	if got := acquiredString(a.fetch(ctx, 1000)); got != "[0-9 delivery 1]" {
		t.Fatalf("acquired %s", got)
	}
	return n, a
}
