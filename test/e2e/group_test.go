package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestE2EGroupEagerRangeKillMember: three range-balanced members split a
// 6-partition topic 2/2/2; one is SIGKILLed (no LeaveGroup); after its
// session timeout the other two own all six partitions and consume every
// record produced afterwards.
func TestE2EGroupEagerRangeKillMember(t *testing.T) {
	testKillMember(t, "range")
}

// TestE2EGroupCooperativeKillMember is the same with cooperative-sticky:
// the rebalances are incremental, so the survivors never have a partition
// revoked that they keep — they only gain the dead member's partitions.
func TestE2EGroupCooperativeKillMember(t *testing.T) {
	testKillMember(t, "cooperative-sticky")
}

func testKillMember(t *testing.T, balancer string) {
	b := startGroupBroker(t)
	const topic, parts = "kill", 6
	createTopic(t, newAdmin(t, b.Addr()), topic, parts, nil)
	log := newGroupLog()
	spec := memberSpec{Addr: b.Addr(), Group: "kill-" + balancer, Topic: topic, Balancer: balancer, Session: groupSession}
	a := startMember(t, log, "a", spec)
	c := startMember(t, log, "b", spec)
	child := startChildMember(t, spec)
	wantAssignment(t, parts, "three members split 6 partitions 2/2/2", a.ownedSet, c.ownedSet, child.ownedSet)
	for _, m := range []*member{a, c} {
		if n := len(m.ownedSet()); n != 2 {
			t.Fatalf("member %s holds %d partitions, want 2", m.name, n)
		}
	}
	beforeA, beforeB := a.ownedSet(), c.ownedSet()
	revA, _, _ := a.history()
	revB, _, _ := c.history()
	t.Logf("before the kill: a=%v b=%v child=%v", beforeA, beforeB, child.ownedSet())

	// Nothing was produced yet, so the child committed nothing and the
	// survivors' resume check (start at offset 0) holds for its partitions.
	killed := time.Now()
	child.kill(t)
	wantAssignment(t, parts, "survivors own all 6 partitions after the session timeout", a.ownedSet, c.ownedSet)
	t.Logf("survivors a=%v b=%v %v after the kill", a.ownedSet(), c.ownedSet(), time.Since(killed).Round(100*time.Millisecond))
	if balancer == "cooperative-sticky" {
		if !isSubset(beforeA, a.ownedSet()) || !isSubset(beforeB, c.ownedSet()) {
			t.Errorf("sticky: survivors lost partitions: a %v -> %v, b %v -> %v", beforeA, a.ownedSet(), beforeB, c.ownedSet())
		}
		for _, x := range []struct {
			m       *member
			before  []int32
			revoked []int32
		}{{a, beforeA, revA}, {c, beforeB, revB}} {
			revokes, losts, _ := x.m.history()
			for _, p := range revokes[len(x.revoked):] {
				if slices.Contains(x.before, p) {
					t.Errorf("member %s: partition %d revoked in an incremental rebalance though it kept it", x.m.name, p)
				}
			}
			if len(losts) > 0 {
				t.Errorf("member %s lost partitions %v (a fatal group error)", x.m.name, losts)
			}
		}
		log.mu.Lock()
		same := log.reassignedSame
		log.mu.Unlock()
		if same > 0 {
			t.Errorf("cooperative-sticky: %d partitions were revoked and assigned back to the same member (an eager rebalance)", same)
		}
	}

	vals := producePerPartition(t, b.Addr(), topic, "after-kill", parts, 10)
	eventually(t, 30*time.Second, "survivors consume the records produced after the kill", func() error {
		got := log.values()
		for _, v := range vals {
			if got[v] == 0 {
				return fmt.Errorf("%s not consumed (%d values seen)", v, len(got))
			}
		}
		return nil
	})
	log.check(t)
}

func isSubset(sub, set []int32) bool {
	for _, p := range sub {
		if !slices.Contains(set, p) {
			return false
		}
	}
	return true
}

// TestE2EGroupCommitsSurviveRestart: offsets committed by a group consumer
// survive a clean broker restart and a SIGKILL, and a new consumer of the
// group starts exactly at them: it re-reads nothing the commit covered and
// skips nothing after it.
func TestE2EGroupCommitsSurviveRestart(t *testing.T) {
	// A short broker session: the restart after SIGKILL waits it out.
	b := startGroupBroker(t, withSet("broker.session.timeout.ms=3000"))
	const topic, group, parts = "resume", "resume-g", 3
	createTopic(t, newAdmin(t, b.Addr()), topic, parts, nil)
	producePerPartition(t, b.Addr(), topic, "first", parts, 30)

	// Read everything, commit only up to offset 20 of each partition.
	c1 := groupReader(t, b.Addr(), group, topic)
	got := readGroup(t, c1, parts*30)
	wantOffsets(t, got, map[int32][2]int64{0: {0, 30}, 1: {0, 30}, 2: {0, 30}})
	commit := map[string]map[int32]kgo.EpochOffset{topic: {}}
	for p := int32(0); p < parts; p++ {
		commit[topic][p] = kgo.EpochOffset{Epoch: -1, Offset: 20}
	}
	commitSync(t, c1, commit)
	c1.Close()
	wantCommitted(t, b.Addr(), group, topic, map[int32]int64{0: 20, 1: 20, 2: 20})

	if err := b.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	b.restart()
	wantCommitted(t, b.Addr(), group, topic, map[int32]int64{0: 20, 1: 20, 2: 20})
	producePerPartition(t, b.Addr(), topic, "second", parts, 5)

	// Resumes at 20: offsets 20..34 of each partition, nothing before.
	c2 := groupReader(t, b.Addr(), group, topic)
	got = readGroup(t, c2, parts*15)
	wantOffsets(t, got, map[int32][2]int64{0: {20, 35}, 1: {20, 35}, 2: {20, 35}})
	if err := c2.CommitUncommittedOffsets(testCtx(t)); err != nil {
		t.Fatalf("commit: %v", err)
	}
	c2.Close()
	wantCommitted(t, b.Addr(), group, topic, map[int32]int64{0: 35, 1: 35, 2: 35})

	// A crash keeps acknowledged commits too.
	b.kill9()
	b.restart()
	wantCommitted(t, b.Addr(), group, topic, map[int32]int64{0: 35, 1: 35, 2: 35})
	producePerPartition(t, b.Addr(), topic, "third", parts, 1)
	c3 := groupReader(t, b.Addr(), group, topic)
	got = readGroup(t, c3, parts)
	wantOffsets(t, got, map[int32][2]int64{0: {35, 36}, 1: {35, 36}, 2: {35, 36}})
}

// groupReader is a group consumer that commits only when told to.
func groupReader(t testing.TB, addr, group, topic string) *kgo.Client {
	return newClient(t, addr,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(groupSession),
		kgo.HeartbeatInterval(groupHeartbeat),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(300*time.Millisecond))
}

// readGroup polls until n records came back, then polls once more for a
// short while: anything extra is a record read twice.
func readGroup(t testing.TB, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group read: %d of %d records before the bound", len(out), n)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		out = append(out, fs.Records()...)
	}
	extraCtx, cancelExtra := context.WithTimeout(context.Background(), time.Second)
	defer cancelExtra()
	out = append(out, cl.PollFetches(extraCtx).Records()...)
	return out
}

// wantOffsets checks that recs are exactly offsets [lo, hi) of each
// partition in want, each once.
func wantOffsets(t testing.TB, recs []*kgo.Record, want map[int32][2]int64) {
	t.Helper()
	got := map[int32][]int64{}
	for _, r := range recs {
		got[r.Partition] = append(got[r.Partition], r.Offset)
	}
	for p, span := range want {
		var exp []int64
		for o := span[0]; o < span[1]; o++ {
			exp = append(exp, o)
		}
		offs := got[p]
		slices.Sort(offs)
		if !slices.Equal(offs, exp) {
			t.Errorf("partition %d: read offsets %s, want %d..%d once each", p, spans(offs), span[0], span[1]-1)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("read partition %d, which has nothing new", p)
		}
	}
}

// spans abbreviates a sorted offset list.
func spans(offs []int64) string {
	if len(offs) == 0 {
		return "none"
	}
	s := ""
	start := offs[0]
	for i := 1; i <= len(offs); i++ {
		if i == len(offs) || offs[i] != offs[i-1]+1 {
			if s != "" {
				s += ","
			}
			if start == offs[i-1] {
				s += fmt.Sprint(start)
			} else {
				s += fmt.Sprintf("%d..%d", start, offs[i-1])
			}
			if i < len(offs) {
				start = offs[i]
			}
		}
	}
	return s
}

func commitSync(t testing.TB, cl *kgo.Client, offs map[string]map[int32]kgo.EpochOffset) {
	t.Helper()
	var cerr error
	cl.CommitOffsetsSync(testCtx(t), offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
					cerr = fmt.Errorf("%s/%d: %w", tp.Topic, p.Partition, e)
				}
			}
		}
	})
	if cerr != nil {
		t.Fatalf("commit: %v", cerr)
	}
}

// wantCommitted checks the group's committed offsets with OffsetFetch.
func wantCommitted(t testing.TB, addr, group, topic string, want map[int32]int64) {
	t.Helper()
	resp, err := newAdmin(t, addr).FetchOffsets(testCtx(t), group)
	if err != nil {
		t.Fatalf("FetchOffsets %s: %v", group, err)
	}
	for p, w := range want {
		o, ok := resp.Lookup(topic, p)
		if !ok || o.Err != nil || o.At != w {
			t.Errorf("group %s %s/%d: committed %+v (found %v), want %d", group, topic, p, o, ok, w)
		}
	}
}

// TestE2EGroupEveryRecordCounted produces records while members join and
// leave, and counts every record: all are consumed at least once, no
// (partition, offset) goes to two members in one generation, a partition
// is never held by two members at once, and a member that takes over a
// partition starts at the offset its previous owner committed.
func TestE2EGroupEveryRecordCounted(t *testing.T) {
	for _, balancer := range []string{"range", "cooperative-sticky"} {
		t.Run(balancer, func(t *testing.T) { testEveryRecordCounted(t, balancer) })
	}
}

func testEveryRecordCounted(t *testing.T, balancer string) {
	b := startGroupBroker(t)
	const topic, parts, perPhase = "counted", 6, 400
	createTopic(t, newAdmin(t, b.Addr()), topic, parts, nil)
	prod := newClient(t, b.Addr())
	log := newGroupLog()
	defer log.check(t) // also when a bound below fails the test
	spec := memberSpec{Addr: b.Addr(), Group: "counted-" + balancer, Topic: topic, Balancer: balancer, Session: groupSession}
	at := map[string][2]int64{}

	live := map[string]*member{}
	settle := func(what string) {
		t.Helper()
		var fs []func() []int32
		for _, m := range live {
			fs = append(fs, m.ownedSet)
		}
		wantAssignment(t, parts, what, fs...)
	}
	n := 0
	phase := func() {
		produceSpread(t, prod, topic, "rec", n, n+perPhase, at)
		n += perPhase
	}
	phase() // before anyone consumes
	for _, step := range []struct{ join, leave string }{
		{join: "a"}, {join: "b"}, {join: "c"}, {leave: "a"}, {join: "d"}, {leave: "b"}, {join: "e"},
	} {
		if step.join != "" {
			live[step.join] = startMember(t, log, step.join, spec)
		} else {
			live[step.leave].close(t)
			delete(live, step.leave)
		}
		settle(fmt.Sprintf("after %+v", step))
		phase()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := log.values()
		missing := 0
		for v := range at {
			if got[v] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			log.explainMissing(t, newAdmin(t, b.Addr()), spec.Group, topic, at)
			t.Fatalf("%d of %d records never consumed within 60 s", missing, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := log.values()
	dups := 0
	for _, c := range got {
		dups += c - 1
	}
	log.mu.Lock()
	resumed := log.resumeChecks
	log.mu.Unlock()
	t.Logf("%d records, %d distinct consumed, %d re-deliveries, %d takeovers resumed at a commit", n, len(got), dups, resumed)
	if resumed == 0 {
		t.Errorf("no member took over a partition with committed records: the churn did not exercise resumption")
	}
}

// TestE2EGroupStaticMemberRestart: a static member (group.instance.id)
// that restarts within the session timeout gets its partitions back and
// the other members see no rebalance: no revocation, same generation.
func TestE2EGroupStaticMemberRestart(t *testing.T) {
	b := startGroupBroker(t)
	const topic, parts = "static", 6
	createTopic(t, newAdmin(t, b.Addr()), topic, parts, nil)
	log := newGroupLog()
	spec := func(id string) memberSpec {
		return memberSpec{Addr: b.Addr(), Group: "static-g", Topic: topic, Balancer: "range", InstanceID: id, Session: 20 * time.Second}
	}
	a := startMember(t, log, "a", spec("static-a"))
	bm := startMember(t, log, "b", spec("static-b"))
	c := startMember(t, log, "c", spec("static-c"))
	wantAssignment(t, parts, "three static members split 6 partitions", a.ownedSet, bm.ownedSet, c.ownedSet)
	// Let the group settle: the assignment callbacks run before the
	// members' next heartbeats confirm the generation.
	waitGroupState(t, b.Addr(), "static-g", "Stable", 3)
	ownedA := a.ownedSet()
	genB, genC := bm.generation(), c.generation()
	revB, _, asgB := bm.history()
	revC, _, asgC := c.history()

	a.close(t) // static: no LeaveGroup
	a2 := startMember(t, log, "a2", spec("static-a"))
	eventually(t, groupSettle, "restarted static member gets its partitions back", func() error {
		if got := a2.ownedSet(); !slices.Equal(got, ownedA) {
			return fmt.Errorf("a2 holds %v, a held %v", got, ownedA)
		}
		return nil
	})
	// Several heartbeat intervals: a rebalance, had one started, would
	// have reached the others by now.
	time.Sleep(10 * groupHeartbeat)
	waitGroupState(t, b.Addr(), "static-g", "Stable", 3)
	if g := bm.generation(); g != genB {
		t.Errorf("member b: generation %d -> %d across a static restart", genB, g)
	}
	if g := c.generation(); g != genC {
		t.Errorf("member c: generation %d -> %d across a static restart", genC, g)
	}
	for _, x := range []struct {
		m        *member
		rev, asg int
	}{{bm, len(revB), asgB}, {c, len(revC), asgC}} {
		rev, lost, asg := x.m.history()
		if len(rev) != x.rev || asg != x.asg || len(lost) > 0 {
			t.Errorf("member %s rebalanced across a static restart: revoked %v, lost %v, %d -> %d assignments", x.m.name, rev[x.rev:], lost, x.asg, asg)
		}
	}
	log.check(t)
}

// waitGroupState waits until DescribeGroups reports state with n members.
func waitGroupState(t testing.TB, addr, group, state string, n int) kadm.DescribedGroup {
	t.Helper()
	adm := newAdmin(t, addr)
	var last kadm.DescribedGroup
	eventually(t, groupSettle, fmt.Sprintf("group %s %s with %d members", group, state, n), func() error {
		dg, err := adm.DescribeGroups(testCtx(t), group)
		if err != nil {
			return err
		}
		last = dg[group]
		if last.Err != nil {
			return last.Err
		}
		if last.State != state || len(last.Members) != n {
			return fmt.Errorf("state %s with %d members", last.State, len(last.Members))
		}
		return nil
	})
	return last
}
