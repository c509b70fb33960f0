package node

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestNodeShareStateSurvivesLeaderFailover: a franz-go share consumer
// accepts records 0-9 of a replicated partition (and releases any later
// record it is handed); then the partition's leader shuts down. The new
// leader reads the share partition's state from __share_group_state
// (replicated too), so a second consumer of the group gets records 10-19
// and never 0-9 again.
func TestNodeShareStateSurvivesLeaderFailover(t *testing.T) {
	c := startCluster(t, "share.auto.offset.reset=earliest", "group.share.heartbeat.interval.ms=100",
		"share.coordinator.state.topic.num.partitions=3", "offsets.topic.num.partitions=3")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	adm := kadm.NewClient(c.client())
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": new("2")}, "jobs"); err != nil {
		t.Fatal(err)
	}
	prod := c.client(kgo.DefaultProduceTopic("jobs"), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 20 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	leader := c.waitLeader(ctx, "jobs", 0)

	first := c.client(kgo.ShareGroup("workers"), kgo.ConsumeTopics("jobs"), kgo.ShareMaxRecords(5))
	accepted := map[int]bool{}
	eventually(t, 60*time.Second, "records 0-9 accepted", func() bool {
		pollCtx, pollCancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fetches := first.PollFetches(pollCtx)
		pollCancel()
		fetches.EachRecord(func(r *kgo.Record) {
			v, _ := strconv.Atoi(string(r.Value))
			if v < 10 {
				r.Ack(kgo.AckAccept)
				accepted[v] = true
				return
			}
			r.Ack(kgo.AckRelease)
		})
		if err := first.FlushAcks(ctx); err != nil {
			t.Logf("flush acks: %v", err)
			return false
		}
		return len(accepted) == 10
	})
	first.Close()

	c.stop(int(leader) - 1)
	if newLeader := c.waitLeader(ctx, "jobs", 0); newLeader == leader {
		t.Fatalf("leader still %d after it stopped", leader)
	}
	second := c.client(kgo.ShareGroup("workers"), kgo.ConsumeTopics("jobs"))
	var mu sync.Mutex
	seen := map[int]int{}
	rest := func() int {
		n := 0
		for v := 10; v < 20; v++ {
			if seen[v] > 0 {
				n++
			}
		}
		return n
	}
	poll := func() {
		pollCtx, pollCancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fetches := second.PollFetches(pollCtx)
		pollCancel()
		fetches.EachRecord(func(r *kgo.Record) {
			v, _ := strconv.Atoi(string(r.Value))
			r.Ack(kgo.AckAccept)
			mu.Lock()
			seen[v]++
			mu.Unlock()
		})
		_ = second.FlushAcks(ctx)
	}
	eventually(t, 60*time.Second, "records 10-19 after the failover", func() bool {
		poll()
		mu.Lock()
		defer mu.Unlock()
		return rest() == 10
	})
	poll() // anything left to hand out would come now
	mu.Lock()
	defer mu.Unlock()
	for v := range 10 {
		if seen[v] > 0 {
			t.Errorf("record %d, accepted before the failover, delivered again %d times", v, seen[v])
		}
	}
	t.Logf("after the failover (old leader %d): %v", leader, fmt.Sprint(seen))
}

// TestNodeShareReleasesRecordsWhenConnectionCloses: a member acquires
// records under a 60 s lock and its connection closes without closing the
// share session; the records go to another member at once, as a second
// delivery, not after the lock.
func TestNodeShareReleasesRecordsWhenConnectionCloses(t *testing.T) {
	n := startNode(t, t.TempDir(), "share.auto.offset.reset=earliest", "group.share.record.lock.duration.ms=60000")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "tasks"); err != nil {
		t.Fatal(err)
	}
	p := client(t, n, kgo.DefaultProduceTopic("tasks"))
	for i := range 3 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	aClient := client(t, n)
	a := &shareMember{t: t, cl: aClient, group: "tasks-group", id: "member-a"}
	b := &shareMember{t: t, cl: client(t, n), group: "tasks-group", id: "member-b"}
	a.heartbeat(ctx, []string{"tasks"})
	b.heartbeat(ctx, []string{"tasks"})
	if got := acquiredString(a.fetch(ctx, 1000)); got != "[0-2 delivery 1]" {
		t.Fatalf("a acquired %s, want [0-2 delivery 1]", got)
	}
	if got := acquiredString(b.fetch(ctx, 0)); got != "" {
		t.Fatalf("b acquired %s while a holds the locks", got)
	}
	aClient.Close() // the connection goes; a never closes its session
	// b waits at most 10 s, well under the 60 s lock.
	if got := acquiredString(b.fetch(ctx, 10000)); got != "[0-2 delivery 2]" {
		t.Fatalf("b acquired %s after a's connection closed, want [0-2 delivery 2]", got)
	}
}

// TestNodeShareGroupMembershipSurvivesRestart: a share group's epoch,
// members, subscriptions and assignments are in __consumer_offsets, so
// after a restart the group is described as it was, and its members go on
// heartbeating at their epochs instead of being told UNKNOWN_MEMBER_ID.
func TestNodeShareGroupMembershipSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	a := &shareMember{t: t, cl: client(t, n), group: "orders-group", id: "member-a"}
	b := &shareMember{t: t, cl: client(t, n), group: "orders-group", id: "member-b"}
	a.heartbeat(ctx, []string{"orders"})
	b.heartbeat(ctx, []string{"orders"})
	a.heartbeat(ctx, nil) // a learns the epoch b's join started
	before := describeShareGroupText(t, ctx, client(t, n), "orders-group")
	if a.epoch != 2 || b.epoch != 2 || len(a.parts) != 1 || len(b.parts) != 1 {
		t.Fatalf("before the restart: a epoch %d parts %v, b epoch %d parts %v", a.epoch, a.parts, b.epoch, b.parts)
	}
	shutdown(t, n)

	n = startNode(t, dir)
	after := describeShareGroupText(t, ctx, client(t, n), "orders-group")
	if after != before {
		t.Fatalf("described after the restart:\n%s\nbefore:\n%s", after, before)
	}
	a.cl, b.cl = client(t, n), client(t, n)
	a.heartbeat(ctx, nil)
	b.heartbeat(ctx, nil)
	if a.epoch != 2 || b.epoch != 2 {
		t.Fatalf("after the restart: epochs %d and %d, want 2 (no new epoch)", a.epoch, b.epoch)
	}
}

// describeShareGroupText is ShareGroupDescribe's group epoch and members
// (id, epoch, subscriptions, assignment), as text to compare.
func describeShareGroupText(t *testing.T, ctx context.Context, cl *kgo.Client, group string) string {
	t.Helper()
	req := kmsg.NewPtrShareGroupDescribeRequest()
	req.GroupIDs = []string{group}
	var resp *kmsg.ShareGroupDescribeResponse
	eventually(t, 20*time.Second, "the share group described", func() bool {
		var err error
		resp, err = req.RequestWith(ctx, cl)
		return err == nil && len(resp.Groups) == 1 && resp.Groups[0].ErrorCode == 0
	})
	g := resp.Groups[0]
	out := fmt.Sprintf("state=%s epoch=%d assignment-epoch=%d\n", g.GroupState, g.GroupEpoch, g.AssignmentEpoch)
	members := slices.Clone(g.Members)
	slices.SortFunc(members, func(x, y kmsg.ShareGroupDescribeResponseGroupMember) int {
		return strings.Compare(x.MemberID, y.MemberID)
	})
	for _, m := range members {
		var parts []string
		for _, tp := range m.Assignment.TopicPartitions {
			parts = append(parts, fmt.Sprint(tp.Topic, tp.Partitions))
		}
		out += fmt.Sprintf("%s epoch=%d subs=%v assignment=%v\n", m.MemberID, m.MemberEpoch, m.SubscribedTopicNames, parts)
	}
	return out
}

// TestNodeShareGroupMembershipSurvivesCoordinatorLoss: on three nodes, the
// broker coordinating a share group stops; the leader of the group's
// __consumer_offsets partition after it loads the group from its records,
// and the members heartbeat there at the epochs they had.
func TestNodeShareGroupMembershipSurvivesCoordinatorLoss(t *testing.T) {
	c := startCluster(t, "offsets.topic.num.partitions=3")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(c.client())
	if _, err := adm.CreateTopic(ctx, 2, 3, nil, "events"); err != nil {
		t.Fatal(err)
	}
	a := &shareMember{t: t, cl: c.client(), group: "events-group", id: "member-a"}
	b := &shareMember{t: t, cl: c.client(), group: "events-group", id: "member-b"}
	a.heartbeat(ctx, []string{"events"})
	b.heartbeat(ctx, []string{"events"})
	a.heartbeat(ctx, nil)
	if a.epoch != 2 || b.epoch != 2 {
		t.Fatalf("epochs %d and %d, want 2", a.epoch, b.epoch)
	}
	coordinator := adm.FindGroupCoordinators(ctx, "events-group")["events-group"].NodeID
	c.stop(int(coordinator) - 1)

	a.cl, b.cl = c.client(), c.client()
	a.heartbeat(ctx, nil)
	b.heartbeat(ctx, nil)
	if a.epoch != 2 || b.epoch != 2 || len(a.parts) != 1 || len(b.parts) != 1 {
		t.Fatalf("after the coordinator stopped: a epoch %d parts %v, b epoch %d parts %v", a.epoch, a.parts, b.epoch, b.parts)
	}
	if now := kadm.NewClient(c.client()).FindGroupCoordinators(ctx, "events-group")["events-group"].NodeID; now == coordinator {
		t.Fatalf("coordinator still %d after it stopped", coordinator)
	}
}
