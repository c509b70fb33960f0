package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestNodeShareGroupConsumersAcknowledgeEveryRecord: three franz-go share
// consumers in one share group read a three-partition topic, accepting
// each record; together they see every record, none twice (no lock
// expires), and the group is described and listed as a share group.
func TestNodeShareGroupConsumersAcknowledgeEveryRecord(t *testing.T) {
	n := startNode(t, t.TempDir(), "share.auto.offset.reset=earliest", "group.share.heartbeat.interval.ms=100")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "work"); err != nil {
		t.Fatal(err)
	}
	const total = 300
	var mu sync.Mutex
	seen := map[string]int{}
	perConsumer := make([]int, 3)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 3 {
		cl := client(t, n, kgo.ShareGroup("workers"), kgo.ConsumeTopics("work"), kgo.ClientID(fmt.Sprint("worker-", c)),
			kgo.ShareMaxRecords(10))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				pollCtx, pollCancel := context.WithTimeout(ctx, 500*time.Millisecond)
				fetches := cl.PollFetches(pollCtx)
				pollCancel()
				fetches.EachRecord(func(r *kgo.Record) {
					r.Ack(kgo.AckAccept)
					mu.Lock()
					seen[string(r.Value)]++
					perConsumer[c]++
					mu.Unlock()
				})
				if err := cl.FlushAcks(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("flush acks: %v", err)
				}
			}
		}()
	}
	// Produce once all three have joined and learned their assignment (one
	// partition each), so the work is shared.
	admin := client(t, n)
	eventually(t, 30*time.Second, "three members", func() bool { return shareGroupMembers(ctx, admin, "workers") == 3 })
	p := client(t, n, kgo.DefaultProduceTopic("work"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	for i := range total {
		p.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}, nil)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	eventually(t, 45*time.Second, "every record delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == total
	})
	describeShareGroup(t, ctx, admin, "workers", 3)
	close(done)
	wg.Wait()
	// A member may still fetch from partitions of its previous assignment
	// until its share session forgets them (shared partitions allow it), so
	// which member gets what is timing; with 10 records per fetch the work
	// is still spread.
	busy := 0
	for _, count := range perConsumer {
		if count > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Errorf("records per consumer %v: the work was not shared", perConsumer)
	}
	for v, count := range seen {
		if count != 1 {
			t.Errorf("record %s delivered %d times", v, count)
		}
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := listed["workers"]; !ok || g.ProtocolType != "share" {
		t.Errorf("ListGroups: %+v, want workers with protocol type share", listed)
	}
}

// shareGroupMembers is the number of members ShareGroupDescribe gives
// that have learned the group's epoch (so their assignment), -1 on an
// error.
func shareGroupMembers(ctx context.Context, cl *kgo.Client, group string) int {
	req := kmsg.NewPtrShareGroupDescribeRequest()
	req.GroupIDs = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
		return -1
	}
	n := 0
	for _, m := range resp.Groups[0].Members {
		if m.MemberEpoch == resp.Groups[0].GroupEpoch {
			n++
		}
	}
	return n
}

func describeShareGroup(t *testing.T, ctx context.Context, cl *kgo.Client, group string, members int) {
	t.Helper()
	req := kmsg.NewPtrShareGroupDescribeRequest()
	req.GroupIDs = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	g := resp.Groups[0]
	if err := kerr.ErrorForCode(g.ErrorCode); err != nil || g.GroupState != "Stable" || len(g.Members) != members {
		t.Fatalf("ShareGroupDescribe: %v, state %s, %d members, want Stable with %d", err, g.GroupState, len(g.Members), members)
	}
	for _, m := range g.Members {
		if m.MemberEpoch != g.GroupEpoch && m.MemberEpoch > g.GroupEpoch {
			t.Errorf("member %s epoch %d ahead of group epoch %d", m.MemberID, m.MemberEpoch, g.GroupEpoch)
		}
	}
}

// shareMember drives the share protocol with raw requests, to see the
// acquired ranges and delivery counts.
type shareMember struct {
	t     *testing.T
	cl    *kgo.Client
	group string
	id    string
	epoch int32
	sess  int32
	topic [16]byte
	parts []int32
}

func (m *shareMember) heartbeat(ctx context.Context, subscribe []string) {
	m.t.Helper()
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.GroupID, req.MemberID, req.MemberEpoch, req.SubscribedTopicNames = m.group, m.id, m.epoch, subscribe
	var resp *kmsg.ShareGroupHeartbeatResponse
	var err error
	for {
		// The first heartbeat of a node creates __consumer_offsets:
		// retriable errors until it is led.
		resp, err = req.RequestWith(ctx, m.cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if !kerr.IsRetriable(err) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		m.t.Fatalf("heartbeat of %s: %v", m.id, err)
	}
	m.epoch = resp.MemberEpoch
	if resp.Assignment != nil {
		m.parts = nil
		for _, tp := range resp.Assignment.TopicPartitions {
			m.topic = tp.TopicID
			m.parts = append(m.parts, tp.Partitions...)
		}
	}
}

// fetch sends a ShareFetch with acks (offset ranges to accept) and returns
// the acquired ranges of partition 0.
func (m *shareMember) fetch(ctx context.Context, waitMs int32, accept ...[2]int64) []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord {
	m.t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &m.group, &m.id, m.sess
	req.MaxWaitMillis, req.MaxBytes, req.MaxRecords = waitMs, 1<<20, 100
	rp := kmsg.NewShareFetchRequestTopicPartition()
	rp.Partition, rp.PartitionMaxBytes = 0, 1<<20
	for _, a := range accept {
		rp.AcknowledgementBatches = append(rp.AcknowledgementBatches, kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{FirstOffset: a[0], LastOffset: a[1], AcknowledgeTypes: []int8{1}})
	}
	rt := kmsg.NewShareFetchRequestTopic()
	rt.TopicID, rt.Partitions = m.topic, []kmsg.ShareFetchRequestTopicPartition{rp}
	if m.sess == 0 || len(accept) > 0 {
		req.Topics = []kmsg.ShareFetchRequestTopic{rt}
	}
	resp, err := req.RequestWith(ctx, m.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		m.t.Fatalf("share fetch of %s: %v", m.id, err)
	}
	m.sess++
	var out []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				m.t.Fatalf("share fetch of %s, partition %d: %v", m.id, p.Partition, err)
			}
			if err := kerr.ErrorForCode(p.AcknowledgeErrorCode); err != nil {
				m.t.Fatalf("share fetch of %s, acknowledging partition %d: %v", m.id, p.Partition, err)
			}
			out = append(out, p.AcquiredRecords...)
		}
	}
	return out
}

func acquiredString(rs []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord) string {
	s := ""
	for _, r := range rs {
		s += fmt.Sprintf("[%d-%d delivery %d]", r.FirstOffset, r.LastOffset, r.DeliveryCount)
	}
	return s
}

// TestNodeShareGroupRedeliversAfterLockExpiryAndKeepsAcksOverRestart: a
// member that does not acknowledge loses its records when the acquisition
// lock (300 ms here) expires; another member gets them as a second
// delivery and accepts them; after a restart of the node the accepted
// records stay accepted and only a new record is delivered.
func TestNodeShareGroupRedeliversAfterLockExpiryAndKeepsAcksOverRestart(t *testing.T) {
	dir := t.TempDir()
	sets := []string{"share.auto.offset.reset=earliest", "group.share.record.lock.duration.ms=300"}
	n := startNode(t, dir, sets...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "jobs"); err != nil {
		t.Fatal(err)
	}
	p := client(t, n, kgo.DefaultProduceTopic("jobs"))
	for i := range 5 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	a := &shareMember{t: t, cl: client(t, n), group: "jobs-group", id: "member-a"}
	b := &shareMember{t: t, cl: client(t, n), group: "jobs-group", id: "member-b"}
	a.heartbeat(ctx, []string{"jobs"})
	b.heartbeat(ctx, []string{"jobs"})
	if got := acquiredString(a.fetch(ctx, 1000)); got != "[0-4 delivery 1]" {
		t.Fatalf("a acquired %s, want [0-4 delivery 1]", got)
	}
	// b waits: everything is locked by a until the lock expires.
	if got := acquiredString(b.fetch(ctx, 0)); got != "" {
		t.Fatalf("b acquired %s while a holds the locks", got)
	}
	if got := acquiredString(b.fetch(ctx, 5000)); got != "[0-4 delivery 2]" {
		t.Fatalf("b acquired %s after the lock expired, want [0-4 delivery 2]", got)
	}
	b.fetch(ctx, 0, [2]int64{0, 4})
	shutdown(t, n)

	n = startNode(t, dir, sets...)
	c := &shareMember{t: t, cl: client(t, n), group: "jobs-group", id: "member-c"}
	c.heartbeat(ctx, []string{"jobs"})
	if got := acquiredString(c.fetch(ctx, 200)); got != "" {
		t.Fatalf("after restart c acquired %s of the accepted records", got)
	}
	p = client(t, n, kgo.DefaultProduceTopic("jobs"))
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("5")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := acquiredString(c.fetch(ctx, 5000)); got != "[5-5 delivery 1]" {
		t.Fatalf("after restart c acquired %s, want [5-5 delivery 1]", got)
	}
}

// acknowledge sends a ShareAcknowledge of first..last with the given types
// (one for the range, or one per offset) and returns partition 0's error.
func (m *shareMember) acknowledge(ctx context.Context, first, last int64, types ...int8) error {
	m.t.Helper()
	_, err := m.acknowledgeV2(ctx, false, first, last, types...)
	return err
}

// TestNodeShareAcknowledgeReleaseRejectAccept: per-offset acknowledgement
// types through ShareAcknowledge: released records come back at once with
// their delivery counted, a rejected one never does, an accepted one is
// done; acknowledging a record not held is INVALID_RECORD_STATE, a wrong
// session epoch INVALID_SHARE_SESSION_EPOCH, a stranger UNKNOWN_MEMBER_ID.
func TestNodeShareAcknowledgeReleaseRejectAccept(t *testing.T) {
	n := startNode(t, t.TempDir(), "share.auto.offset.reset=earliest")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "queue"); err != nil {
		t.Fatal(err)
	}
	p := client(t, n, kgo.DefaultProduceTopic("queue"))
	for i := range 4 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	a := &shareMember{t: t, cl: client(t, n), group: "queue-group", id: "member-a"}
	a.heartbeat(ctx, []string{"queue"})
	if got := acquiredString(a.fetch(ctx, 1000)); got != "[0-3 delivery 1]" {
		t.Fatalf("acquired %s", got)
	}
	// RELEASE 0-1, REJECT 2, ACCEPT 3.
	if err := a.acknowledge(ctx, 0, 3, 2, 2, 3, 1); err != nil {
		t.Fatalf("acknowledge: %v", err)
	}
	if got := acquiredString(a.fetch(ctx, 1000)); got != "[0-1 delivery 2]" {
		t.Fatalf("after release/reject/accept acquired %s, want [0-1 delivery 2]", got)
	}
	if err := a.acknowledge(ctx, 2, 2, 1); !errors.Is(err, kerr.InvalidRecordState) {
		t.Errorf("accepting a rejected record: %v, want INVALID_RECORD_STATE", err)
	}

	a.sess = 99
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &a.group, &a.id, a.sess
	resp, err := req.RequestWith(ctx, a.cl)
	if err != nil || !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.InvalidShareSessionEpoch) {
		t.Errorf("share fetch at epoch 99: %v %v, want INVALID_SHARE_SESSION_EPOCH", err, resp)
	}
	stranger := "member-x"
	req.MemberID, req.ShareSessionEpoch = &stranger, 0
	resp, err = req.RequestWith(ctx, a.cl)
	if err != nil || !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.UnknownMemberID) {
		t.Errorf("share fetch of a stranger: %v %v, want UNKNOWN_MEMBER_ID", err, resp)
	}
}

// TestNodeShareArchiveAtLeaveSurvivesRestart: with a delivery limit of 2,
// a member that leaves while holding records on their second delivery
// archives them, and that is written before its leave is answered: after
// a restart nobody gets them again (the stored state would otherwise have
// them available from their first release).
func TestNodeShareArchiveAtLeaveSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	sets := []string{"share.auto.offset.reset=earliest", "group.share.delivery.count.limit=2"}
	n := startNode(t, dir, sets...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "poison"); err != nil {
		t.Fatal(err)
	}
	p := client(t, n, kgo.DefaultProduceTopic("poison"))
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("0")}, &kgo.Record{Value: []byte("1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	a := &shareMember{t: t, cl: client(t, n), group: "poison-group", id: "member-a"}
	a.heartbeat(ctx, []string{"poison"})
	if got := acquiredString(a.fetch(ctx, 1000)); got != "[0-1 delivery 1]" {
		t.Fatalf("acquired %s", got)
	}
	if err := a.acknowledge(ctx, 0, 1, 2); err != nil { // RELEASE: written, delivery 1
		t.Fatal(err)
	}
	if got := acquiredString(a.fetch(ctx, 1000)); got != "[0-1 delivery 2]" {
		t.Fatalf("acquired %s the second time", got)
	}
	a.epoch = -1
	a.heartbeat(ctx, nil)
	shutdown(t, n)

	n = startNode(t, dir, sets...)
	b := &shareMember{t: t, cl: client(t, n), group: "poison-group", id: "member-b"}
	b.heartbeat(ctx, []string{"poison"})
	if got := acquiredString(b.fetch(ctx, 500)); got != "" {
		t.Fatalf("after the restart b acquired %s of the records archived at the delivery limit", got)
	}
}

// TestNodeShareGroupRefusesAConsumerGroupsID: a share member cannot join
// under the id of a consumer group that has committed offsets
// (GROUP_ID_NOT_FOUND, as Kafka answers).
func TestNodeShareGroupRefusesAConsumerGroupsID(t *testing.T) {
	n := startNode(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "ledger"); err != nil {
		t.Fatal(err)
	}
	offsets := kadm.Offsets{}
	offsets.AddOffset("ledger", 0, 0, -1)
	if err := adm.CommitAllOffsets(ctx, "accounts", offsets); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.GroupID, req.MemberID, req.SubscribedTopicNames = "accounts", "member-a", []string{"ledger"}
	resp, err := req.RequestWith(ctx, client(t, n))
	if err != nil || !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.GroupIDNotFound) {
		t.Fatalf("share join of a consumer group's id: %v %+v, want GROUP_ID_NOT_FOUND", err, resp)
	}
}

// TestNodeConsumerGroupRequestsRefuseAShareGroupsID: the other way round,
// a consumer-group request under a share group's id gets Kafka 4.1's
// answer: JoinGroup INCONSISTENT_GROUP_PROTOCOL with no member id,
// ConsumerGroupHeartbeat and a commit (plain or transactional) without a
// generation GROUP_ID_NOT_FOUND, and the classic protocol's later calls
// and OffsetFetch as classicGroupCallsUnderAShareGroupsID says; nothing of
// a consumer group is made, and another id still joins.
func TestNodeConsumerGroupRequestsRefuseAShareGroupsID(t *testing.T) {
	n := startNode(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := client(t, n)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "ledger"); err != nil {
		t.Fatal(err)
	}
	a := &shareMember{t: t, cl: cl, group: "auditors", id: "member-a"}
	a.heartbeat(ctx, []string{"ledger"})

	join := func(group string) *kmsg.JoinGroupResponse {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = 9
		req.Group, req.MemberID, req.ProtocolType = group, "", "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0}}}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := join("auditors"); !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.InconsistentGroupProtocol) || resp.MemberID != "" {
		t.Errorf("JoinGroup under a share group's id: %v, member %q, want INCONSISTENT_GROUP_PROTOCOL and none",
			kerr.ErrorForCode(resp.ErrorCode), resp.MemberID)
	}
	// Another id joins (v9 asks a first join to come back with its id).
	if resp := join("accountants"); !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.MemberIDRequired) {
		t.Errorf("JoinGroup of a new group: %v, want MEMBER_ID_REQUIRED", kerr.ErrorForCode(resp.ErrorCode))
	}

	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Version = 1
	hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = "auditors", "consumer-a", 0, 10000
	hb.SubscribedTopicNames, hb.Topics = []string{"ledger"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	hbResp, err := hb.RequestWith(ctx, cl)
	if err != nil || !errors.Is(kerr.ErrorForCode(hbResp.ErrorCode), kerr.GroupIDNotFound) {
		t.Errorf("ConsumerGroupHeartbeat under a share group's id: %v %+v, want GROUP_ID_NOT_FOUND", err, hbResp)
	}

	offsets := kadm.Offsets{}
	offsets.AddOffset("ledger", 0, 0, -1)
	if err := adm.CommitAllOffsets(ctx, "auditors", offsets); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Errorf("committing under a share group's id: %v, want GROUP_ID_NOT_FOUND", err)
	}
	txn := kmsg.NewPtrTxnOffsetCommitRequest()
	txn.TransactionalID, txn.Group, txn.ProducerID, txn.ProducerEpoch, txn.Generation = "tx", "auditors", 1, 0, -1
	txn.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "ledger", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 0, LeaderEpoch: -1}}}}
	txnResp, err := txn.RequestWith(ctx, cl)
	if err != nil || !errors.Is(kerr.ErrorForCode(txnResp.Topics[0].Partitions[0].ErrorCode), kerr.GroupIDNotFound) {
		t.Errorf("TxnOffsetCommit under a share group's id: %v %+v, want GROUP_ID_NOT_FOUND", err, txnResp)
	}
	classicGroupCallsUnderAShareGroupsID(t, ctx, cl, "auditors", a.id)
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g := listed["auditors"]; g.ProtocolType != "share" {
		t.Errorf("ListGroups lists auditors as %+v, want only the share group", g)
	}
	describeShareGroup(t, ctx, cl, "auditors", 1)
}

// classicGroupCallsUnderAShareGroupsID checks the answers Kafka 4.1's
// group coordinator gives under a share group's id, even naming one of its
// members: its classicGroupHeartbeat, classicGroupSync and
// classicGroupLeave serve only classic and consumer groups, and answer any
// other type as a group not found, UNKNOWN_MEMBER_ID (LeaveGroup per
// member, the request as a whole succeeding); a share group's
// validateOffsetFetch throws GROUP_ID_NOT_FOUND, which fetchOffsets and
// fetchAllOffsets turn into no offsets and no error.
func classicGroupCallsUnderAShareGroupsID(t *testing.T, ctx context.Context, cl *kgo.Client, group, shareMemberID string) {
	t.Helper()
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 4
	hb.Group, hb.MemberID, hb.Generation = group, shareMemberID, 1
	if resp, err := hb.RequestWith(ctx, cl); err != nil || !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.UnknownMemberID) {
		t.Errorf("Heartbeat under a share group's id: %v %+v, want UNKNOWN_MEMBER_ID", err, resp)
	}
	protocolType, protocol := "consumer", "range"
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 5
	sync.Group, sync.MemberID, sync.Generation, sync.ProtocolType, sync.Protocol = group, shareMemberID, 1, &protocolType, &protocol
	if resp, err := sync.RequestWith(ctx, cl); err != nil || !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.UnknownMemberID) {
		t.Errorf("SyncGroup under a share group's id: %v %+v, want UNKNOWN_MEMBER_ID", err, resp)
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 5
	leave.Group, leave.Members = group, []kmsg.LeaveGroupRequestMember{{MemberID: shareMemberID}}
	resp, err := leave.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 || len(resp.Members) != 1 || !errors.Is(kerr.ErrorForCode(resp.Members[0].ErrorCode), kerr.UnknownMemberID) {
		t.Errorf("LeaveGroup under a share group's id: %v %+v, want no error and the member UNKNOWN_MEMBER_ID", err, resp)
	}
	for _, topics := range [][]kmsg.OffsetFetchRequestGroupTopic{{{Topic: "ledger", Partitions: []int32{0}}}, nil} {
		fetch := kmsg.NewPtrOffsetFetchRequest()
		fetch.Version = 8
		fetch.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group, Topics: topics}}
		resp, err := fetch.RequestWith(ctx, cl)
		if err != nil || len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
			t.Errorf("OffsetFetch of topics %v under a share group's id: %v %+v, want no error", topics, err, resp)
			continue
		}
		var got []string
		for _, ft := range resp.Groups[0].Topics {
			for _, fp := range ft.Partitions {
				got = append(got, fmt.Sprintf("%s-%d@%d/%v", ft.Topic, fp.Partition, fp.Offset, kerr.ErrorForCode(fp.ErrorCode)))
			}
		}
		want := "[]"
		if topics != nil {
			want = "[ledger-0@-1/<nil>]"
		}
		if fmt.Sprint(got) != want {
			t.Errorf("OffsetFetch of topics %v under a share group's id: %v, want %s", topics, got, want)
		}
	}
}

// TestNodeShareGroupDelete: DeleteGroups refuses a share group with
// members (NON_EMPTY_GROUP) and deletes an empty one with its share
// partitions' state, so the same id starts afresh.
func TestNodeShareGroupDelete(t *testing.T) {
	n := startNode(t, t.TempDir(), "share.auto.offset.reset=earliest")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "inbox"); err != nil {
		t.Fatal(err)
	}
	p := client(t, n, kgo.DefaultProduceTopic("inbox"))
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("0")}, &kgo.Record{Value: []byte("1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	a := &shareMember{t: t, cl: client(t, n), group: "inbox-group", id: "member-a"}
	a.heartbeat(ctx, []string{"inbox"})
	if got := acquiredString(a.fetch(ctx, 1000)); got != "[0-1 delivery 1]" {
		t.Fatalf("acquired %s", got)
	}
	a.fetch(ctx, 0, [2]int64{0, 1})
	if _, err := adm.DeleteGroup(ctx, "inbox-group"); !errors.Is(err, kerr.NonEmptyGroup) {
		t.Fatalf("deleting a share group with a member: %v, want NON_EMPTY_GROUP", err)
	}
	a.epoch = -1
	a.heartbeat(ctx, nil)
	if _, err := adm.DeleteGroup(ctx, "inbox-group"); err != nil {
		t.Fatalf("deleting the empty share group: %v", err)
	}
	if n := shareGroupMembers(ctx, client(t, n), "inbox-group"); n != -1 {
		t.Fatalf("described after delete: %d members", n)
	}
	// The accepted records were the deleted group's: a new group of the
	// same id reads from the log start again.
	b := &shareMember{t: t, cl: client(t, n), group: "inbox-group", id: "member-b"}
	b.heartbeat(ctx, []string{"inbox"})
	if got := acquiredString(b.fetch(ctx, 1000)); got != "[0-1 delivery 1]" {
		t.Fatalf("after delete acquired %s, want [0-1 delivery 1]", got)
	}
}
