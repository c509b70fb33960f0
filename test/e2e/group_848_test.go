package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startConsumerProtocolBroker is a broker whose consumer-protocol groups
// time out and heartbeat as fast as the classic tests' members do.
func startConsumerProtocolBroker(t testing.TB) *broker {
	t.Helper()
	return startGroupBroker(t, withSet(
		fmt.Sprintf("group.consumer.session.timeout.ms=%d", groupSession.Milliseconds()),
		fmt.Sprintf("group.consumer.heartbeat.interval.ms=%d", groupHeartbeat.Milliseconds())))
}

// TestE2EGroupConsumerProtocolKillMember: three franz-go members using the
// consumer group protocol (KIP-848, kgo.ServerSideBalancer) split a
// 6-partition topic 2/2/2 as the broker assigns; one is SIGKILLed and after
// the session timeout the survivors own all six, without having given up
// any partition they held (the protocol is incremental). The group log
// checks, as events arrive, that no partition is assigned while another
// member holds it, that consumption resumes at the committed offset and
// that no record goes to two members within one member epoch. A member
// closing cleanly hands its partitions over at once.
func TestE2EGroupConsumerProtocolKillMember(t *testing.T) {
	b := startConsumerProtocolBroker(t)
	const topic, parts = "kip848", 6
	createTopic(t, newAdmin(t, b.Addr()), topic, parts, nil)
	log := newGroupLog()
	spec := memberSpec{Addr: b.Addr(), Group: "kip848", Topic: topic, Balancer: "cooperative-sticky", Session: groupSession, ServerSide: true}
	a := startMember(t, log, "a", spec)
	c := startMember(t, log, "b", spec)
	child := startChildMember(t, spec)
	wantAssignment(t, parts, "three members split 6 partitions 2/2/2", a.ownedSet, c.ownedSet, child.ownedSet)
	wantConsumerProtocolGroup(t, a.cl, spec.Group, 3)

	before := producePerPartition(t, b.Addr(), topic, "before-kill", parts, 10)
	eventually(t, 30*time.Second, "the in-process members consume their partitions' records produced before the kill", func() error {
		// The child's records are not in the log: only those of the
		// partitions a and b hold.
		var mine []string
		for _, p := range append(a.ownedSet(), c.ownedSet()...) {
			for i := range 10 {
				mine = append(mine, fmt.Sprintf("before-kill-%d-%04d", p, i))
			}
		}
		if len(mine) != 40 || len(before) != 60 {
			return fmt.Errorf("a and b hold %d partitions' records of %d", len(mine)/10, len(before)/10)
		}
		return wantConsumed(log, mine)
	})

	beforeA, beforeB := a.ownedSet(), c.ownedSet()
	childOwned := child.ownedSet()
	killed := time.Now()
	child.kill(t)
	// The child's autocommit may or may not have run before the kill:
	// its partitions resume at whatever it committed, which the log
	// cannot see; read it now that nothing can commit for them.
	committed, err := newAdmin(t, b.Addr()).FetchOffsets(testCtx(t), spec.Group)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range childOwned {
		if o, ok := committed.Lookup(topic, p); ok && o.Err == nil && o.At >= 0 {
			log.setCommitted(p, o.At)
		}
	}
	wantAssignment(t, parts, "survivors own all 6 partitions after the session timeout", a.ownedSet, c.ownedSet)
	t.Logf("survivors a=%v b=%v %v after the kill", a.ownedSet(), c.ownedSet(), time.Since(killed).Round(100*time.Millisecond))
	if !isSubset(beforeA, a.ownedSet()) || !isSubset(beforeB, c.ownedSet()) {
		t.Errorf("survivors lost partitions: a %v -> %v, b %v -> %v", beforeA, a.ownedSet(), beforeB, c.ownedSet())
	}
	for _, m := range []*member{a, c} {
		if _, losts, _ := m.history(); len(losts) > 0 {
			t.Errorf("member %s lost partitions %v (a fatal group error)", m.name, losts)
		}
	}

	after := producePerPartition(t, b.Addr(), topic, "after-kill", parts, 10)
	eventually(t, 30*time.Second, "survivors consume the records produced after the kill", func() error {
		return wantConsumed(log, after)
	})

	a.close(t)
	wantAssignment(t, parts, "b owns all 6 partitions once a leaves", c.ownedSet)
	last := producePerPartition(t, b.Addr(), topic, "after-leave", parts, 5)
	eventually(t, 30*time.Second, "b consumes the records produced after a left", func() error {
		return wantConsumed(log, last)
	})
	log.check(t)
}

// wantConsumed reports unless every value was consumed by an in-process
// member.
func wantConsumed(log *groupLog, vals []string) error {
	got := log.values()
	for _, v := range vals {
		if got[v] == 0 {
			return fmt.Errorf("%s not consumed (%d values seen)", v, len(got))
		}
	}
	return nil
}

// wantConsumerProtocolGroup checks, with ConsumerGroupDescribe, that the
// group runs the consumer protocol with n members at the assignment epoch.
func wantConsumerProtocolGroup(t testing.TB, cl *kgo.Client, group string, n int) {
	t.Helper()
	eventually(t, groupSettle, "the group is a stable consumer-protocol group", func() error {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{group}
		resp, err := req.RequestWith(testCtx(t), cl)
		if err != nil {
			return err
		}
		g := resp.Groups[0]
		if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
			return err
		}
		if g.State != "Stable" || len(g.Members) != n || g.AssignorName != "uniform" {
			return fmt.Errorf("state %s, %d members, assignor %q", g.State, len(g.Members), g.AssignorName)
		}
		for _, m := range g.Members {
			if m.MemberEpoch != g.AssignmentEpoch {
				return fmt.Errorf("member %s at epoch %d, assignment epoch %d", m.MemberID, m.MemberEpoch, g.AssignmentEpoch)
			}
		}
		return nil
	})
}

// TestE2EGroupConsumerProtocolStaticRestart: a static member of a
// consumer-protocol group (group.instance.id) that restarts gets its
// partitions back and the other members see no rebalance: their member
// epochs do not move and nothing is revoked from them.
func TestE2EGroupConsumerProtocolStaticRestart(t *testing.T) {
	b := startConsumerProtocolBroker(t)
	const topic, parts = "kip848-static", 6
	createTopic(t, newAdmin(t, b.Addr()), topic, parts, nil)
	log := newGroupLog()
	spec := func(id string) memberSpec {
		return memberSpec{Addr: b.Addr(), Group: "kip848-static", Topic: topic, Balancer: "cooperative-sticky", InstanceID: id,
			Session: groupSession, ServerSide: true}
	}
	a := startMember(t, log, "a", spec("static-a"))
	bm := startMember(t, log, "b", spec("static-b"))
	wantAssignment(t, parts, "two static members split 6 partitions", a.ownedSet, bm.ownedSet)
	wantConsumerProtocolGroup(t, bm.cl, "kip848-static", 2)
	ownedA := a.ownedSet()
	epochB := bm.generation()
	revB, _, asgB := bm.history()

	a.close(t) // a static member leaves with epoch -2: its partitions wait for it
	a2 := startMember(t, log, "a2", spec("static-a"))
	eventually(t, groupSettle, "the restarted static member gets its partitions back", func() error {
		if got := a2.ownedSet(); !slices.Equal(got, ownedA) {
			return fmt.Errorf("a2 holds %v, a held %v", got, ownedA)
		}
		return nil
	})
	time.Sleep(10 * groupHeartbeat)
	wantConsumerProtocolGroup(t, bm.cl, "kip848-static", 2)
	if e := bm.generation(); e != epochB {
		t.Errorf("member b: epoch %d -> %d across a static restart", epochB, e)
	}
	if rev, lost, asg := bm.history(); len(rev) != len(revB) || asg != asgB || len(lost) > 0 {
		t.Errorf("member b rebalanced across a static restart: revoked %v, lost %v, %d -> %d assignments", rev[len(revB):], lost, asgB, asg)
	}
	log.check(t)
}

// TestE2EGroupConsumerProtocolRegex: a franz-go member subscribing by
// regex (ConsumeRegex; kgo sends the pattern as SubscribedTopicRegex, which
// the broker matches against whole topic names) is assigned a matching
// topic created after it joined, and never a topic that does not match.
func TestE2EGroupConsumerProtocolRegex(t *testing.T) {
	b := startConsumerProtocolBroker(t)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "metrics-cpu", 2, nil)
	createTopic(t, adm, "logs", 1, nil)
	cl := newClient(t, b.Addr(), kgo.ConsumerGroup("kip848-regex"), kgo.ConsumeTopics("^metrics-.*"), kgo.ConsumeRegex(),
		kgo.ServerSideBalancer(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(300*time.Millisecond),
		kgo.MetadataMinAge(250*time.Millisecond), kgo.MetadataMaxAge(time.Second))
	producePerPartition(t, b.Addr(), "metrics-cpu", "cpu", 2, 3)
	producePerPartition(t, b.Addr(), "logs", "log", 1, 3)
	got := map[string]int{}
	poll := func(what string, want func() error) {
		eventually(t, groupSettle, what, func() error {
			ctx, cancel := context.WithTimeout(testCtx(t), 500*time.Millisecond)
			defer cancel()
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got[r.Topic]++ })
			return want()
		})
	}
	poll("the records of metrics-cpu", func() error {
		if got["metrics-cpu"] != 6 {
			return fmt.Errorf("consumed %v", got)
		}
		return nil
	})
	createTopic(t, adm, "metrics-mem", 1, nil)
	producePerPartition(t, b.Addr(), "metrics-mem", "mem", 1, 4)
	poll("the records of metrics-mem, created after the join", func() error {
		if got["metrics-mem"] != 4 {
			return fmt.Errorf("consumed %v", got)
		}
		return nil
	})
	if got["logs"] != 0 {
		t.Errorf("consumed %d records of logs, which the regex does not match", got["logs"])
	}
	described, err := adm.DescribeConsumerGroups(testCtx(t), "kip848-regex")
	if err != nil || described["kip848-regex"].Err != nil {
		t.Fatalf("describe: %v %v", err, described["kip848-regex"].Err)
	}
	if ms := described["kip848-regex"].Members; len(ms) != 1 || ms[0].SubscribedTopicRegex == nil {
		t.Errorf("members %+v, want one with a regex subscription", ms)
	}
}
