package e2e

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestE2EGroupMixedProtocols: a classic franz-go consumer (JoinGroup,
// cooperative-sticky) owns a 6-partition topic; a consumer-protocol
// member (KIP-848, kgo.ServerSideBalancer) joins the same group, which
// the broker converts into a consumer group (Kafka 4's online upgrade).
// The two split the partitions 3/3 as the server assigns, the classic
// one revoking before the new one is given anything; every record is
// read, no partition is held by two members at once, and none is read by
// two members within one epoch (the group log's checks). Then the classic
// member is rolled to the consumer protocol and the group stays whole.
// The classic member runs a cooperative balancer, then an eager one
// (range), which revokes everything at each rebalance.
func TestE2EGroupMixedProtocols(t *testing.T) {
	for _, balancer := range []string{"cooperative-sticky", "range"} {
		t.Run(balancer, func(t *testing.T) { testMixedProtocols(t, balancer) })
	}
}

func testMixedProtocols(t *testing.T, balancer string) {
	b := startConsumerProtocolBroker(t)
	const topic, group, parts = "mixed", "mixed", 6
	createTopic(t, newAdmin(t, b.Addr()), topic, parts, nil)
	log := newGroupLog()
	classic := memberSpec{Addr: b.Addr(), Group: group, Topic: topic, Balancer: balancer, Session: groupSession}
	modern := classic
	modern.ServerSide, modern.Balancer = true, "cooperative-sticky" // the uniform server assignor

	a := startMember(t, log, "a-classic", classic)
	wantAssignment(t, parts, "the classic member owns all 6 partitions", a.ownedSet)
	first := producePerPartition(t, b.Addr(), topic, "classic-only", parts, 10)
	eventually(t, groupSettle, "the classic member consumes every record", func() error { return wantConsumed(log, first) })

	c := startMember(t, log, "c-consumer", modern)
	wantAssignment(t, parts, "a classic and a consumer-protocol member split 6 partitions 3/3", a.ownedSet, c.ownedSet)
	wantMixedGroup(t, c.cl, group, 2)
	mixed := producePerPartition(t, b.Addr(), topic, "mixed", parts, 10)
	eventually(t, groupSettle, "the mixed group consumes every record", func() error { return wantConsumed(log, mixed) })

	// Roll the classic member: it leaves (handing its partitions to c),
	// and comes back with the consumer protocol.
	a.close(t)
	wantAssignment(t, parts, "c owns all 6 partitions once the classic member left", c.ownedSet)
	a2 := startMember(t, log, "a2-consumer", modern)
	wantAssignment(t, parts, "two consumer-protocol members split 6 partitions", a2.ownedSet, c.ownedSet)
	wantConsumerProtocolGroup(t, c.cl, group, 2)
	rolled := producePerPartition(t, b.Addr(), topic, "rolled", parts, 10)
	eventually(t, groupSettle, "the rolled group consumes every record", func() error { return wantConsumed(log, rolled) })
	for _, m := range []*member{a, c, a2} {
		if _, losts, _ := m.history(); len(losts) > 0 {
			t.Errorf("member %s lost partitions %v (a fatal group error)", m.name, losts)
		}
	}
	log.check(t)
}

// wantMixedGroup checks, with ConsumerGroupDescribe, that the group was
// converted to a consumer group and has n members, all at the assignment
// epoch, one of them classic (member type 0) and the others not.
func wantMixedGroup(t testing.TB, cl *kgo.Client, group string, n int) {
	t.Helper()
	eventually(t, groupSettle, "the group is a stable consumer group of a classic and a consumer-protocol member", func() error {
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
		if g.State != "Stable" || len(g.Members) != n {
			return fmt.Errorf("state %s, %d members", g.State, len(g.Members))
		}
		classic := 0
		for _, m := range g.Members {
			if m.MemberEpoch != g.AssignmentEpoch {
				return fmt.Errorf("member %s at epoch %d, assignment epoch %d", m.MemberID, m.MemberEpoch, g.AssignmentEpoch)
			}
			if m.MemberType == 0 {
				classic++
			}
		}
		if classic != 1 {
			return fmt.Errorf("%d classic members, want 1", classic)
		}
		return nil
	})
}

// TestE2EGroupMixedDowngrade: the other way. A consumer-protocol member
// and a classic one share a group; when the consumer-protocol member
// leaves, the broker converts the group back to a classic group (Kafka
// 4's online downgrade), whose classic rebalance hands the remaining
// member everything; a second classic member then joins it as classic
// groups always did. Every record is read and no partition has two
// owners at once.
func TestE2EGroupMixedDowngrade(t *testing.T) {
	b := startConsumerProtocolBroker(t)
	const topic, group, parts = "mixed-down", "mixed-down", 6
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, topic, parts, nil)
	log := newGroupLog()
	classic := memberSpec{Addr: b.Addr(), Group: group, Topic: topic, Balancer: "cooperative-sticky", Session: groupSession}
	modern := classic
	modern.ServerSide = true

	c := startMember(t, log, "c-consumer", modern)
	wantAssignment(t, parts, "the consumer-protocol member owns all 6 partitions", c.ownedSet)
	a := startMember(t, log, "a-classic", classic)
	wantAssignment(t, parts, "a consumer-protocol and a classic member split 6 partitions", a.ownedSet, c.ownedSet)
	wantMixedGroup(t, c.cl, group, 2)
	first := producePerPartition(t, b.Addr(), topic, "mixed", parts, 10)
	eventually(t, groupSettle, "the mixed group consumes every record", func() error { return wantConsumed(log, first) })

	c.close(t)
	wantAssignment(t, parts, "the classic member owns all 6 once the consumer-protocol member left", a.ownedSet)
	eventually(t, groupSettle, "the group is a classic group again", func() error {
		req := kmsg.NewPtrListGroupsRequest()
		req.Version = 5
		resp, err := req.RequestWith(testCtx(t), a.cl)
		if err != nil {
			return err
		}
		for _, g := range resp.Groups {
			if g.Group == group && g.ProtocolType == "consumer" && g.GroupType == "classic" && g.GroupState == "Stable" {
				return nil
			}
		}
		return fmt.Errorf("listed as %+v", resp.Groups)
	})
	a2 := startMember(t, log, "a2-classic", classic)
	wantAssignment(t, parts, "two classic members split 6 partitions", a.ownedSet, a2.ownedSet)
	last := producePerPartition(t, b.Addr(), topic, "classic-again", parts, 10)
	eventually(t, groupSettle, "the classic group consumes every record", func() error { return wantConsumed(log, last) })
	for _, m := range []*member{a, c, a2} {
		if _, losts, _ := m.history(); len(losts) > 0 {
			t.Errorf("member %s lost partitions %v (a fatal group error)", m.name, losts)
		}
	}
	log.check(t)
}
