package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/coord/sharegroup"
)

// The share group offset admin APIs (90–92) on one node, driven by kadm
// and by raw share members (shareMember, share_test.go) whose every fetch
// is checked.

// startShareAdminNode is a node with topic ledger (one partition, records
// 0–9) and share group book, whose member a accepted 0–5 and still holds
// 6–9 under its lock.
func startShareAdminNode(t *testing.T) (*Node, *kadm.Client, *shareMember) {
	t.Helper()
	return startShareAdminNodeIn(t, t.TempDir())
}

var shareAdminSets = []string{"share.auto.offset.reset=earliest", "group.share.record.lock.duration.ms=60000"}

func startShareAdminNodeIn(t *testing.T, dir string) (*Node, *kadm.Client, *shareMember) {
	t.Helper()
	n := startNode(t, dir, shareAdminSets...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "ledger"); err != nil {
		t.Fatal(err)
	}
	p := client(t, n, kgo.DefaultProduceTopic("ledger"))
	for i := range 10 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	a := &shareMember{t: t, cl: client(t, n), group: "book", id: "member-a"}
	a.heartbeat(ctx, []string{"ledger"})
	if got := acquiredString(a.fetch(ctx, 1000)); got != "[0-9 delivery 1]" {
		t.Fatalf("acquired %s", got)
	}
	a.fetch(ctx, 0, [2]int64{0, 5})
	return n, adm, a
}

// leave closes a member's share session and takes it out of the group.
func (m *shareMember) leave(ctx context.Context) {
	m.t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &m.group, &m.id, -1
	if resp, err := req.RequestWith(ctx, m.cl); err != nil || resp.ErrorCode != 0 {
		m.t.Fatalf("closing the share session of %s: %v %+v", m.id, err, resp)
	}
	m.epoch = -1
	m.heartbeat(ctx, nil)
}

// startOffsets is what kadm's DescribeShareGroupOffsets gives for group:
// "topic-partition" to start offset.
func startOffsets(t *testing.T, ctx context.Context, adm *kadm.Client, group string) map[string]int64 {
	t.Helper()
	described, err := adm.DescribeShareGroupOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	d := described[group]
	if d.Err != nil {
		t.Fatalf("describe %s: %v", group, d.Err)
	}
	out := map[string]int64{}
	for topic, ps := range d.Offsets {
		for p, o := range ps {
			if o.Err != nil {
				t.Fatalf("describe %s %s-%d: %v", group, topic, p, o.Err)
			}
			out[fmt.Sprintf("%s-%d", topic, p)] = o.StartOffset
		}
	}
	return out
}

func alterOffset(ctx context.Context, adm *kadm.Client, group, topic string, partition int32, at int64) error {
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: topic, Partition: partition, At: at})
	resp, err := adm.AlterShareGroupOffsets(ctx, group, offsets)
	if err != nil {
		return err
	}
	return resp.Error()
}

// TestNodeShareOffsetsAlter: describe shows the start offset after the
// acknowledgements; alter is refused while the group has a member
// (NON_EMPTY_GROUP); once it is empty, alter moves the start back and
// then forward, and each next consumer gets exactly the records from the
// new start, fresh (delivery 1), not what the partition leader had cached.
func TestNodeShareOffsetsAlter(t *testing.T) {
	n, adm, a := startShareAdminNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if got := startOffsets(t, ctx, adm, "book"); got["ledger-0"] != 6 || len(got) != 1 {
		t.Fatalf("start offsets %v, want ledger-0 at 6", got)
	}
	if err := alterOffset(ctx, adm, "book", "ledger", 0, 2); !errors.Is(err, kerr.NonEmptyGroup) {
		t.Fatalf("alter with a member: %v, want NON_EMPTY_GROUP", err)
	}
	a.leave(ctx)

	if err := alterOffset(ctx, adm, "book", "ledger", 0, 2); err != nil {
		t.Fatalf("alter back to 2: %v", err)
	}
	if got := startOffsets(t, ctx, adm, "book"); got["ledger-0"] != 2 {
		t.Fatalf("after alter start offsets %v, want ledger-0 at 2", got)
	}
	b := &shareMember{t: t, cl: client(t, n), group: "book", id: "member-b"}
	b.heartbeat(ctx, []string{"ledger"})
	if got := acquiredString(b.fetch(ctx, 1000)); got != "[2-9 delivery 1]" {
		t.Fatalf("after alter back to 2 acquired %s, want [2-9 delivery 1]", got)
	}
	b.fetch(ctx, 0, [2]int64{2, 3})
	b.leave(ctx)

	if err := alterOffset(ctx, adm, "book", "ledger", 0, 8); err != nil {
		t.Fatalf("alter forward to 8: %v", err)
	}
	c := &shareMember{t: t, cl: client(t, n), group: "book", id: "member-c"}
	c.heartbeat(ctx, []string{"ledger"})
	if got := acquiredString(c.fetch(ctx, 1000)); got != "[8-9 delivery 1]" {
		t.Fatalf("after alter forward to 8 acquired %s, want [8-9 delivery 1]", got)
	}
}

// TestNodeShareOffsetsFenceACachedLeader: a share partition's state is
// started anew (InitializeShareGroupState, as an alter on another node
// would) while its leader here still caches it for a member whose session
// is open. The leader's next state write is fenced (its acknowledgement
// answers NOT_LEADER_OR_FOLLOWER) and it drops its copy, so the next fetch
// delivers from the new start and the new state is not overwritten.
func TestNodeShareOffsetsFenceACachedLeader(t *testing.T) {
	testShareOffsetsFence(t, 7, "[7-9 delivery 1]", 7)
}

// TestNodeShareOffsetsDeleteFencesACachedLeader: the same with the state
// started with no start offset, as DeleteShareGroupOffsets does: the
// fenced leader does not write the deleted state back, and reads the
// partition as new (share.auto.offset.reset=earliest here).
func TestNodeShareOffsetsDeleteFencesACachedLeader(t *testing.T) {
	testShareOffsetsFence(t, -1, "[0-9 delivery 1]", 0)
}

// testShareOffsetsFence starts the share partition anew at startOffset
// under member a's feet and checks what a acquires next, and the start
// offset stored after.
func testShareOffsetsFence(t *testing.T, startOffset int64, wantAcquired string, wantStart int64) {
	n, adm, a := startShareAdminNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	described, err := adm.DescribeShareGroupOffsets(ctx, "book")
	if err != nil {
		t.Fatal(err)
	}
	topicID := described["book"].Offsets["ledger"][0].TopicID
	summary := kmsg.NewPtrReadShareGroupStateSummaryRequest()
	summary.GroupID = "book"
	summary.Topics = []kmsg.ReadShareGroupStateSummaryRequestTopic{{TopicID: topicID,
		Partitions: []kmsg.ReadShareGroupStateSummaryRequestTopicPartition{{Partition: 0}}}}
	sresp, err := summary.RequestWith(ctx, client(t, n))
	if err != nil || sresp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("state summary: %v %+v", err, sresp)
	}
	init := kmsg.NewPtrInitializeShareGroupStateRequest()
	init.GroupID = "book"
	init.Topics = []kmsg.InitializeShareGroupStateRequestTopic{{TopicID: topicID,
		Partitions: []kmsg.InitializeShareGroupStateRequestTopicPartition{{Partition: 0,
			StateEpoch: sresp.Topics[0].Partitions[0].StateEpoch + 2, StartOffset: startOffset}}}}
	iresp, err := init.RequestWith(ctx, client(t, n))
	if err != nil || iresp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("initialize: %v %+v", err, iresp)
	}

	ack := kmsg.NewPtrShareAcknowledgeRequest()
	ack.GroupID, ack.MemberID, ack.ShareSessionEpoch = &a.group, &a.id, a.sess
	ack.Topics = []kmsg.ShareAcknowledgeRequestTopic{{TopicID: topicID, Partitions: []kmsg.ShareAcknowledgeRequestTopicPartition{{Partition: 0,
		AcknowledgementBatches: []kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{{FirstOffset: 6, LastOffset: 9, AcknowledgeTypes: []int8{1}}}}}}}
	aresp, err := ack.RequestWith(ctx, a.cl)
	if err != nil || aresp.ErrorCode != 0 {
		t.Fatalf("acknowledge: %v %+v", err, aresp)
	}
	a.sess++
	if got := kerr.ErrorForCode(aresp.Topics[0].Partitions[0].ErrorCode); !errors.Is(got, kerr.NotLeaderForPartition) {
		t.Fatalf("acknowledging under the old state: %v, want NOT_LEADER_OR_FOLLOWER", got)
	}
	if got := acquiredString(a.fetch(ctx, 1000)); got != wantAcquired {
		t.Fatalf("after the fence acquired %s, want %s", got, wantAcquired)
	}
	if got := startOffsets(t, ctx, adm, "book"); got["ledger-0"] != wantStart {
		t.Fatalf("start offsets %v, want ledger-0 at %d", got, wantStart)
	}
}

// TestNodeShareOffsetsReadAgainWhenGroupGoesIdle: once the last share
// session of a group on the leader ends, the leader forgets its copy (as
// Kafka's does when the group goes empty), so a state changed behind its
// back is read again by the next consumer, before any write is fenced.
func TestNodeShareOffsetsReadAgainWhenGroupGoesIdle(t *testing.T) {
	n, adm, a := startShareAdminNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a.leave(ctx)
	described, err := adm.DescribeShareGroupOffsets(ctx, "book")
	if err != nil {
		t.Fatal(err)
	}
	topicID := described["book"].Offsets["ledger"][0].TopicID
	// Not through AlterShareGroupOffsets, which drops this node's copy
	// itself: as a group coordinator elsewhere would.
	init := kmsg.NewPtrInitializeShareGroupStateRequest()
	init.GroupID = "book"
	init.Topics = []kmsg.InitializeShareGroupStateRequestTopic{{TopicID: topicID,
		Partitions: []kmsg.InitializeShareGroupStateRequestTopicPartition{{Partition: 0, StateEpoch: 100, StartOffset: 4}}}}
	if resp, err := init.RequestWith(ctx, client(t, n)); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("initialize: %v %+v", err, resp)
	}
	b := &shareMember{t: t, cl: client(t, n), group: "book", id: "member-b"}
	b.heartbeat(ctx, []string{"ledger"})
	if got := acquiredString(b.fetch(ctx, 1000)); got != "[4-9 delivery 1]" {
		t.Fatalf("acquired %s, want [4-9 delivery 1]", got)
	}
}

// TestNodeShareOffsetsDelete: delete is refused with a member; once the
// group is empty it deletes the state, describe shows nothing, and the
// next consumer starts at share.auto.offset.reset (earliest here).
func TestNodeShareOffsetsDelete(t *testing.T) {
	n, adm, a := startShareAdminNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := adm.DeleteShareGroupOffsets(ctx, "book", "ledger"); !errors.Is(err, kerr.NonEmptyGroup) {
		t.Fatalf("delete with a member: %v, want NON_EMPTY_GROUP", err)
	}
	a.leave(ctx)
	resp, err := adm.DeleteShareGroupOffsets(ctx, "book", "ledger")
	if err != nil || resp.Error() != nil {
		t.Fatalf("delete: %v %v", err, resp)
	}
	if got := startOffsets(t, ctx, adm, "book"); len(got) != 0 {
		t.Fatalf("after delete start offsets %v, want none", got)
	}
	b := &shareMember{t: t, cl: client(t, n), group: "book", id: "member-b"}
	b.heartbeat(ctx, []string{"ledger"})
	if got := acquiredString(b.fetch(ctx, 1000)); got != "[0-9 delivery 1]" {
		t.Fatalf("after delete acquired %s, want [0-9 delivery 1]", got)
	}
}

// TestNodeShareOffsetsErrors: the errors Kafka gives: an unknown group is
// GROUP_ID_NOT_FOUND for delete (alter creates it:
// TestNodeShareOffsetsAlterCreatesGroup); an unknown topic or partition
// UNKNOWN_TOPIC_OR_PARTITION, and so is a topic the group has no state
// for; describing named topics answers -1 for what has no state.
func TestNodeShareOffsetsErrors(t *testing.T) {
	n, adm, a := startShareAdminNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a.leave(ctx)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteShareGroupOffsets(ctx, "nobody", "ledger"); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Errorf("delete of an unknown group: %v, want GROUP_ID_NOT_FOUND", err)
	}
	if err := alterOffset(ctx, adm, "book", "missing", 0, 0); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("alter of an unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	if err := alterOffset(ctx, adm, "book", "ledger", 5, 0); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("alter of an unknown partition: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	resp, err := adm.DeleteShareGroupOffsets(ctx, "book", "missing", "other")
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"missing", "other"} {
		if err, _ := resp.Lookup(topic); !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("delete of topic %s: %v, want UNKNOWN_TOPIC_OR_PARTITION", topic, err)
		}
	}
	req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	rg.GroupID = "book"
	rg.Topics = []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "ledger", Partitions: []int32{0}},
		{Topic: "other", Partitions: []int32{0}}, {Topic: "missing", Partitions: []int32{0}}}
	req.Groups = append(req.Groups, rg)
	dresp, err := req.RequestWith(ctx, client(t, n))
	if err != nil || dresp.Groups[0].ErrorCode != 0 {
		t.Fatalf("describe: %v %+v", err, dresp)
	}
	got := map[string]string{}
	for _, rt := range dresp.Groups[0].Topics {
		for _, rp := range rt.Partitions {
			got[rt.Topic] = fmt.Sprintf("%d/%v", rp.StartOffset, kerr.ErrorForCode(rp.ErrorCode))
		}
	}
	want := map[string]string{"ledger": "6/<nil>", "other": "-1/<nil>", "missing": "-1/<nil>"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("described %v, want %v", got, want)
	}
}

// TestNodeShareOffsetsAlterAfterHeartbeatLeave: a member that leaves by
// heartbeat alone (its share session is ended by the coordinator, not
// closed) leaves the leader's copy in place; the alter itself drops the
// copy on this node, so the next consumer starts where the alter says.
func TestNodeShareOffsetsAlterAfterHeartbeatLeave(t *testing.T) {
	n, adm, a := startShareAdminNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a.epoch = -1
	a.heartbeat(ctx, nil)
	if err := alterOffset(ctx, adm, "book", "ledger", 0, 1); err != nil {
		t.Fatalf("alter: %v", err)
	}
	b := &shareMember{t: t, cl: client(t, n), group: "book", id: "member-b"}
	b.heartbeat(ctx, []string{"ledger"})
	if got := acquiredString(b.fetch(ctx, 1000)); got != "[1-9 delivery 1]" {
		t.Fatalf("acquired %s, want [1-9 delivery 1]", got)
	}
}

// TestNodeShareOffsetsTopicACLs: with the authorizer on, the topic checks
// of 90–92 as Kafka makes them: a named topic the principal may not
// describe (or read, to alter or delete) is TOPIC_AUTHORIZATION_FAILED on
// its own, the others are served, and describing every topic leaves the
// hidden one out.
func TestNodeShareOffsetsTopicACLs(t *testing.T) {
	ps := &principals{}
	cfg := loadConfig(t, "log.dirs="+t.TempDir(), "listeners=PLAINTEXT://127.0.0.1:0",
		"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer", "super.users=User:admin")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{Config: cfg, Logger: quietLogger, testPrincipal: ps.lookup})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, n) })
	adminClient := client(t, n, ps.dialAs(auth.User("admin")))
	admin := kadm.NewClient(adminClient)
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "ledger"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "secret"); err != nil {
		t.Fatal(err)
	}
	// The node reaches the share coordinator on its own listener as
	// User:ANONYMOUS, which needs CLUSTER_ACTION (security.md).
	cluster := kadm.NewACLs().Allow("User:ANONYMOUS").Clusters().Operations(kadm.OpClusterAction).ResourcePatternType(kadm.ACLPatternLiteral)
	if results, err := admin.CreateACLs(ctx, cluster); err != nil || results[0].Err != nil {
		t.Fatalf("create ACLs: %v %+v", err, results)
	}
	// An empty share group "book" with state for both topics.
	m := &shareMember{t: t, cl: adminClient, group: "book", id: "member-a"}
	m.heartbeat(ctx, []string{"ledger", "secret"})
	m.epoch = -1
	m.heartbeat(ctx, nil)
	for _, topic := range []string{"ledger", "secret"} {
		if err := alterOffset(ctx, admin, "book", topic, 0, 0); err != nil {
			t.Fatalf("admin alter of %s: %v", topic, err)
		}
	}
	acls := []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:alice").Groups("book").Operations(kadm.OpDescribe, kadm.OpRead, kadm.OpDelete).ResourcePatternType(kadm.ACLPatternLiteral),
		kadm.NewACLs().Allow("User:alice").Topics("ledger").Operations(kadm.OpDescribe, kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral),
	}
	for _, b := range acls {
		if results, err := admin.CreateACLs(ctx, b); err != nil || results[0].Err != nil {
			t.Fatalf("create ACLs: %v %+v", err, results)
		}
	}
	aliceClient := client(t, n, ps.dialAs(auth.User("alice")))
	alice := kadm.NewClient(aliceClient)

	if got := startOffsets(t, ctx, alice, "book"); len(got) != 1 || got["ledger-0"] != 0 {
		t.Errorf("alice describes every topic: %v, want ledger-0 only", got)
	}
	if got := startOffsets(t, ctx, admin, "book"); len(got) != 2 {
		t.Errorf("admin describes every topic: %v, want ledger-0 and secret-0", got)
	}
	req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	rg.GroupID = "book"
	rg.Topics = []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "ledger", Partitions: []int32{0}}, {Topic: "secret", Partitions: []int32{0}}}
	req.Groups = append(req.Groups, rg)
	dresp, err := req.RequestWith(ctx, aliceClient)
	if err != nil || dresp.Groups[0].ErrorCode != 0 {
		t.Fatalf("describe: %v %+v", err, dresp)
	}
	described := map[string]error{}
	for _, rt := range dresp.Groups[0].Topics {
		described[rt.Topic] = kerr.ErrorForCode(rt.Partitions[0].ErrorCode)
	}
	if described["ledger"] != nil || !errors.Is(described["secret"], kerr.TopicAuthorizationFailed) {
		t.Errorf("alice describes ledger and secret: %v", described)
	}

	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "ledger", Partition: 0, At: 1})
	offsets.Add(kadm.Offset{Topic: "secret", Partition: 0, At: 1})
	altered, err := alice.AlterShareGroupOffsets(ctx, "book", offsets)
	if err != nil {
		t.Fatal(err)
	}
	if err, _ := altered.Lookup("ledger", 0); err != nil {
		t.Errorf("alice alters ledger: %v", err)
	}
	if err, _ := altered.Lookup("secret", 0); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice alters secret: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if got := startOffsets(t, ctx, admin, "book"); got["ledger-0"] != 1 || got["secret-0"] != 0 {
		t.Errorf("after alice's alter: %v, want ledger-0 at 1 and secret-0 at 0", got)
	}

	deleted, err := alice.DeleteShareGroupOffsets(ctx, "book", "ledger", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if err, _ := deleted.Lookup("ledger"); err != nil {
		t.Errorf("alice deletes ledger: %v", err)
	}
	if err, _ := deleted.Lookup("secret"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice deletes secret: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if got := startOffsets(t, ctx, admin, "book"); len(got) != 1 || got["secret-0"] != 0 {
		t.Errorf("after alice's delete: %v, want secret-0 only", got)
	}
}

// TestNodeShareOffsetsAfterRestart: after a restart the coordinator knows
// which share partitions the group has state for from its
// ShareGroupStatePartitionMetadata record (nothing subscribed since), so
// describing every topic shows the start offset, and delete finds the
// topic.
func TestNodeShareOffsetsAfterRestart(t *testing.T) {
	dir := t.TempDir()
	n, _, a := startShareAdminNodeIn(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a.leave(ctx)
	shutdown(t, n)

	n = startNode(t, dir, shareAdminSets...)
	adm := kadm.NewClient(client(t, n))
	eventually(t, 30*time.Second, "the group's start offsets after the restart", func() bool {
		described, err := adm.DescribeShareGroupOffsets(ctx, "book")
		if err != nil || described["book"].Err != nil {
			return false
		}
		o, ok := described["book"].Offsets.Lookup("ledger", 0)
		return ok && o.StartOffset == 6
	})
	resp, err := adm.DeleteShareGroupOffsets(ctx, "book", "ledger")
	if err != nil || resp.Error() != nil {
		t.Fatalf("delete after the restart: %v %v", err, resp)
	}
	b := &shareMember{t: t, cl: client(t, n), group: "book", id: "member-b"}
	b.heartbeat(ctx, []string{"ledger"})
	if got := acquiredString(b.fetch(ctx, 1000)); got != "[0-9 delivery 1]" {
		t.Fatalf("after delete acquired %s, want [0-9 delivery 1]", got)
	}
}

// TestNodeShareOffsetsAlterRecordsThePartition: altering the offset of a
// partition the group was never assigned records it in the group's
// ShareGroupStatePartitionMetadata, as Kafka's alter does, so describing
// every topic shows it, over a restart too (the record is all the new
// coordinator knows), and deleting the group deletes its state.
func TestNodeShareOffsetsAlterRecordsThePartition(t *testing.T) {
	dir := t.TempDir()
	n, adm, a := startShareAdminNodeIn(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a.leave(ctx)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "spare"); err != nil {
		t.Fatal(err)
	}
	if err := alterOffset(ctx, adm, "book", "spare", 1, 0); err != nil {
		t.Fatalf("alter spare-1: %v", err)
	}
	if got := fmt.Sprint(startOffsets(t, ctx, adm, "book")); got != "map[ledger-0:6 spare-1:0]" {
		t.Fatalf("start offsets %s, want ledger-0 at 6 and spare-1 at 0", got)
	}
	initialized, deleting := shareStateRecord(t, ctx, n, "book")
	if got := fmt.Sprint(initialized, deleting); got != "map[ledger:[0] spare:[1]] []" {
		t.Fatalf("the group's share partitions record: %s", got)
	}
	shutdown(t, n)

	n = startNode(t, dir, shareAdminSets...)
	adm = kadm.NewClient(client(t, n))
	eventually(t, 30*time.Second, "spare-1 described after the restart", func() bool {
		described, err := adm.DescribeShareGroupOffsets(ctx, "book")
		if err != nil || described["book"].Err != nil {
			return false
		}
		o, ok := described["book"].Offsets.Lookup("spare", 1)
		return ok && o.StartOffset == 0
	})
	spare := topicIDs(t, ctx, adm, "spare")["spare"]
	if got := shareStateStart(t, ctx, client(t, n), "book", spare, 1); got != 0 {
		t.Fatalf("spare-1's stored start offset %d before the group's deletion", got)
	}
	if _, err := adm.DeleteGroup(ctx, "book"); err != nil {
		t.Fatalf("deleting the group: %v", err)
	}
	if got := shareStateStart(t, ctx, client(t, n), "book", spare, 1); got != -1 {
		t.Fatalf("spare-1's stored start offset %d after the group's deletion, want none", got)
	}
}

// TestNodeShareOffsetsDeleteRecordsDeleting: DeleteShareGroupOffsets
// moves the topic from the initialized topics of the group's
// ShareGroupStatePartitionMetadata to its deleting ones before it deletes
// the state, as Kafka does; it stays deleting (Sluice starts its state
// anew without an offset rather than deleting it, and deleting the group
// deletes that), and an alter of it makes it initialized again.
func TestNodeShareOffsetsDeleteRecordsDeleting(t *testing.T) {
	n, adm, a := startShareAdminNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a.leave(ctx)
	if resp, err := adm.DeleteShareGroupOffsets(ctx, "book", "ledger"); err != nil || resp.Error() != nil {
		t.Fatalf("delete: %v %v", err, resp)
	}
	initialized, deleting := shareStateRecord(t, ctx, n, "book")
	if got := fmt.Sprint(initialized, deleting); got != "map[] [ledger]" {
		t.Fatalf("the group's share partitions record after the delete: %s, want ledger deleting", got)
	}
	if err := alterOffset(ctx, adm, "book", "ledger", 0, 3); err != nil {
		t.Fatalf("alter after the delete: %v", err)
	}
	initialized, deleting = shareStateRecord(t, ctx, n, "book")
	if got := fmt.Sprint(initialized, deleting); got != "map[ledger:[0]] []" {
		t.Fatalf("the group's share partitions record after the alter: %s, want ledger-0 initialized", got)
	}
	if got := fmt.Sprint(startOffsets(t, ctx, adm, "book")); got != "map[ledger-0:3]" {
		t.Fatalf("start offsets %s, want ledger-0 at 3", got)
	}
}

// shareStateRecord replays the share group's records in its
// __consumer_offsets partition and returns what its
// ShareGroupStatePartitionMetadata says: initialized partitions by topic
// name, and the deleting topics' names.
func shareStateRecord(t *testing.T, ctx context.Context, n *Node, group string) (map[string][]int32, []string) {
	t.Helper()
	adm := kadm.NewClient(client(t, n))
	md, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[[16]byte]string{}
	for name, td := range md.Topics {
		names[td.ID] = name
	}
	topicName := func(id [16]byte) (string, bool) { name, ok := names[id]; return name, ok }
	p := coord.PartitionFor(group, int32(len(md.Topics[coord.OffsetsTopic].Partitions)))
	ends, err := adm.ListEndOffsets(ctx, coord.OffsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(coord.OffsetsTopic, p)
	cl := client(t, n, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{coord.OffsetsTopic: {p: kgo.NewOffset().AtStart()}}))
	groups := map[string]*sharegroup.Group{}
	for next := int64(0); next < end.Offset; {
		fetches := cl.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatalf("reading %s-%d: %v", coord.OffsetsTopic, p, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			if _, err := sharegroup.LoadRecord(groups, r.Key, r.Value, topicName, 0); err != nil {
				t.Fatalf("replaying %s-%d at %d: %v", coord.OffsetsTopic, p, r.Offset, err)
			}
		})
	}
	g := groups[group]
	if g == nil {
		t.Fatalf("no share group %s in %s-%d", group, coord.OffsetsTopic, p)
	}
	var deleting []string
	for _, name := range g.DeletingTopics() {
		deleting = append(deleting, name)
	}
	sort.Strings(deleting)
	return g.InitializedTopics(topicName), deleting
}

// shareStateStart is a share partition's start offset as its share
// coordinator (ReadShareGroupStateSummary) has it, -1 for none.
func shareStateStart(t *testing.T, ctx context.Context, cl *kgo.Client, group string, topicID [16]byte, partition int32) int64 {
	t.Helper()
	req := kmsg.NewPtrReadShareGroupStateSummaryRequest()
	req.GroupID = group
	req.Topics = []kmsg.ReadShareGroupStateSummaryRequestTopic{{TopicID: topicID,
		Partitions: []kmsg.ReadShareGroupStateSummaryRequestTopicPartition{{Partition: partition}}}}
	var start int64
	eventually(t, 20*time.Second, "ReadShareGroupStateSummary answered", func() bool {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			return false
		}
		start = resp.Topics[0].Partitions[0].StartOffset
		return true
	})
	return start
}

// TestNodeShareOffsetsDescribeAssignedWithoutOffset: describing every
// topic answers a partition the group was assigned, and has not fetched
// yet, with start offset -1, as Kafka answers an initialized share
// partition whose state has no start offset yet.
func TestNodeShareOffsetsDescribeAssignedWithoutOffset(t *testing.T) {
	n, adm, _ := startShareAdminNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "fresh"); err != nil {
		t.Fatal(err)
	}
	b := &shareMember{t: t, cl: client(t, n), group: "book", id: "member-b"}
	b.heartbeat(ctx, []string{"fresh"})
	if got := fmt.Sprint(startOffsets(t, ctx, adm, "book")); got != "map[fresh-0:-1 ledger-0:6]" {
		t.Fatalf("start offsets %s, want fresh-0 at -1 and ledger-0 at 6", got)
	}
}

// TestNodeShareOffsetsAlterCreatesGroup: AlterShareGroupOffsets of a group
// that does not exist creates it empty with the given start, as Kafka 4.2
// does (franz-go sets a new group's offsets before its first member
// joins); the group and its start survive a restart, and its first member
// starts there. A consumer group's id is still GROUP_ID_NOT_FOUND.
func TestNodeShareOffsetsAlterCreatesGroup(t *testing.T) {
	dir := t.TempDir()
	n, adm, _ := startShareAdminNodeIn(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := alterOffset(ctx, adm, "fresh", "ledger", 0, 7); err != nil {
		t.Fatalf("alter of a new group: %v", err)
	}
	if got := startOffsets(t, ctx, adm, "fresh"); got["ledger-0"] != 7 {
		t.Fatalf("start offsets of the new group %v, want ledger-0 at 7", got)
	}
	if _, err := adm.CommitOffsets(ctx, "classic", kadm.OffsetsFromRecords(kgo.Record{Topic: "ledger", Partition: 0, Offset: 1})); err != nil {
		t.Fatal(err)
	}
	if err := alterOffset(ctx, adm, "classic", "ledger", 0, 0); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Errorf("alter of a consumer group's id: %v, want GROUP_ID_NOT_FOUND", err)
	}
	shutdown(t, n)

	n = startNode(t, dir, shareAdminSets...)
	adm = kadm.NewClient(client(t, n))
	if got := startOffsets(t, ctx, adm, "fresh"); got["ledger-0"] != 7 {
		t.Fatalf("after a restart start offsets %v, want ledger-0 at 7", got)
	}
	m := &shareMember{t: t, cl: client(t, n), group: "fresh", id: "member-f"}
	m.heartbeat(ctx, []string{"ledger"})
	if got := acquiredString(m.fetch(ctx, 1000)); got != "[7-9 delivery 1]" {
		t.Fatalf("first member of the created group acquired %s, want [7-9 delivery 1]", got)
	}
}
