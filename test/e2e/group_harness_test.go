package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Helpers for the consumer-group tests: in-process kgo group members whose
// partition callbacks and consumed records go into one shared groupLog
// (the log checks the group invariants as events arrive), and a member
// that runs in a child process so a test can crash it with SIGKILL.

const (
	// groupSession is the members' session timeout: Kafka's default
	// group.min.session.timeout.ms, so the broker's defaults accept it.
	groupSession = 6 * time.Second
	// groupHeartbeat is short so members notice a rebalance quickly.
	groupHeartbeat = 300 * time.Millisecond
	// groupSettle bounds how long a group may take to reach an expected
	// assignment: a session timeout plus a full rebalance, with room for
	// a slow CI machine.
	groupSettle = 45 * time.Second
	// memberEnv carries a child member's spec (JSON) to the re-executed
	// test binary; see TestGroupMemberHelperProcess.
	memberEnv = "SLUICE_E2E_GROUP_MEMBER"
)

// startGroupBroker starts a broker without Kafka's 3 s initial rebalance
// delay, so a test's first join completes at once.
func startGroupBroker(t testing.TB, opts ...brokerOpt) *broker {
	t.Helper()
	return startBroker(t, append([]brokerOpt{withSet("group.initial.rebalance.delay.ms=0")}, opts...)...)
}

// balancerByName maps the names the tests use to kgo balancers.
func balancerByName(name string) kgo.GroupBalancer {
	switch name {
	case "range":
		return kgo.RangeBalancer()
	case "roundrobin":
		return kgo.RoundRobinBalancer()
	case "cooperative-sticky":
		return kgo.CooperativeStickyBalancer()
	}
	panic("unknown balancer " + name)
}

// memberSpec configures one group member, in process or in a child.
type memberSpec struct {
	Addr       string        `json:"addr"`
	Group      string        `json:"group"`
	Topic      string        `json:"topic"`
	Balancer   string        `json:"balancer"`
	InstanceID string        `json:"instanceId,omitempty"`
	Session    time.Duration `json:"session"`
	// ServerSide makes the member use the consumer group protocol of
	// KIP-848 (the broker assigns; Balancer picks the server assignor).
	ServerSide bool `json:"serverSide,omitempty"`
}

// delivery is one record as a member consumed it.
type delivery struct {
	member     string
	generation int32
	partition  int32
	offset     int64
	value      string
}

// groupLog is what every in-process member of one group was assigned,
// revoked and consumed. Its invariants, checked as events arrive:
//   - a partition is assigned to a member only once no other member holds
//     it (callbacks of a correct group never overlap);
//   - a member consumes only partitions it holds;
//   - the first record a member consumes from a newly assigned partition
//     is at the offset committed when the partition was last revoked (0
//     if never), i.e. consumption resumes from the committed offset;
//   - within one generation no (partition, offset) goes to two members.
type groupLog struct {
	mu        sync.Mutex
	owner     map[int32]string
	committed map[int32]int64
	// expectStart[member][partition] is the offset of the first record
	// member must consume from a partition it was just assigned.
	expectStart map[string]map[int32]int64
	byGen       map[int32]map[[2]int64]string
	deliveries  []delivery
	// reassignedSame counts partitions revoked from a member and then
	// assigned back to the same member (what eager protocols do).
	reassignedSame int
	revokedFrom    map[string]map[int32]bool
	// resumeChecks counts first records checked against expectStart
	// whose expected offset came from a commit (not the initial 0).
	resumeChecks int
	problems     []string
}

func newGroupLog() *groupLog {
	return &groupLog{
		owner:       map[int32]string{},
		committed:   map[int32]int64{},
		expectStart: map[string]map[int32]int64{},
		byGen:       map[int32]map[[2]int64]string{},
		revokedFrom: map[string]map[int32]bool{},
	}
}

func (l *groupLog) problemf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.problemLocked(format, args...)
}

func (l *groupLog) problemLocked(format string, args ...any) {
	if len(l.problems) < 50 {
		l.problems = append(l.problems, fmt.Sprintf(format, args...))
	}
}

func (l *groupLog) assigned(member string, parts []int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.expectStart[member] == nil {
		l.expectStart[member] = map[int32]int64{}
	}
	for _, p := range parts {
		if o, ok := l.owner[p]; ok && o != member {
			l.problemLocked("partition %d assigned to %s while %s still holds it", p, member, o)
		}
		l.owner[p] = member
		l.expectStart[member][p] = l.committed[p]
		if l.revokedFrom[member][p] {
			l.reassignedSame++
		}
	}
	delete(l.revokedFrom, member)
}

// revoked records partitions a member gave up, with the offsets its
// client knows as committed for them (after the commit in the callback).
func (l *groupLog) revoked(member string, parts []int32, committed map[int32]int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.revokedFrom[member] == nil {
		l.revokedFrom[member] = map[int32]bool{}
	}
	for _, p := range parts {
		if l.owner[p] == member {
			delete(l.owner, p)
		}
		if c, ok := committed[p]; ok && c >= 0 {
			l.committed[p] = c
		}
		delete(l.expectStart[member], p)
		l.revokedFrom[member][p] = true
	}
}

// setCommitted records the committed offset of a partition whose member
// the log does not follow (a child process), before its next owner is
// assigned it.
func (l *groupLog) setCommitted(p int32, offset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.committed[p] = offset
}

// lost records partitions a member lost without a clean revoke; the next
// owner may legitimately re-read anything after the last commit.
func (l *groupLog) lost(member string, parts []int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range parts {
		if l.owner[p] == member {
			delete(l.owner, p)
		}
		delete(l.expectStart[member], p)
	}
}

func (l *groupLog) consumed(member string, gen int32, recs []*kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		d := delivery{member, gen, r.Partition, r.Offset, string(r.Value)}
		l.deliveries = append(l.deliveries, d)
		if o := l.owner[r.Partition]; o != member {
			l.problemLocked("%s consumed %d/%d while %q holds the partition", member, r.Partition, r.Offset, o)
		}
		if want, ok := l.expectStart[member][r.Partition]; ok {
			if r.Offset != want {
				l.problemLocked("%s: first record after assignment of partition %d at offset %d, want the committed offset %d",
					member, r.Partition, r.Offset, want)
			}
			if want > 0 {
				l.resumeChecks++
			}
			delete(l.expectStart[member], r.Partition)
		}
		if l.byGen[gen] == nil {
			l.byGen[gen] = map[[2]int64]string{}
		}
		k := [2]int64{int64(r.Partition), r.Offset}
		if prev, ok := l.byGen[gen][k]; ok && prev != member {
			l.problemLocked("generation %d: record %d/%d delivered to %s and %s", gen, r.Partition, r.Offset, prev, member)
		}
		l.byGen[gen][k] = member
	}
}

// values returns how often each value was consumed.
func (l *groupLog) values() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, d := range l.deliveries {
		out[d.value]++
	}
	return out
}

func (l *groupLog) check(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.problems {
		t.Error(p)
	}
}

// member is one in-process kgo group consumer. Its poll loop blocks
// rebalances while it records a poll (BlockRebalanceOnPoll), so the
// callbacks and the records it logs are serialised as a real consumer
// that processes synchronously would be.
type member struct {
	name  string
	topic string
	log   *groupLog
	cl    *kgo.Client

	mu       sync.Mutex
	owned    map[int32]bool
	revokes  []int32 // every partition revoked, in order
	losts    []int32 // every partition lost, in order
	assigned int     // OnPartitionsAssigned calls with partitions

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

func startMember(t testing.TB, log *groupLog, name string, spec memberSpec, extra ...kgo.Opt) *member {
	t.Helper()
	m := &member{name: name, topic: spec.Topic, log: log, owned: map[int32]bool{}, done: make(chan struct{})}
	opts := append(memberOpts(spec,
		func(ctx context.Context, cl *kgo.Client, a map[string][]int32) { m.onAssigned(a[spec.Topic]) },
		func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			// Overriding the revoke callback replaces kgo's commit on
			// revoke: do it here, as a real consumer must.
			if err := cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
				log.problemf("%s: commit on revoke of %v: %v", name, r[spec.Topic], err)
			}
			m.onRevoked(r[spec.Topic], cl.CommittedOffsets()[spec.Topic])
		},
		func(ctx context.Context, cl *kgo.Client, l map[string][]int32) { m.onLost(l[spec.Topic]) },
	), kgo.BlockRebalanceOnPoll(), kgo.ClientID("sluice-e2e-"+name))
	m.cl = newClient(t, spec.Addr, append(opts, extra...)...)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.poll(ctx)
	t.Cleanup(func() { m.close(t) })
	return m
}

// memberOpts are the kgo options of a group member, shared with the
// child-process member.
func memberOpts(spec memberSpec, assigned, revoked, lost func(context.Context, *kgo.Client, map[string][]int32)) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.ConsumerGroup(spec.Group),
		kgo.ConsumeTopics(spec.Topic),
		kgo.Balancers(balancerByName(spec.Balancer)),
		kgo.SessionTimeout(spec.Session),
		kgo.HeartbeatInterval(groupHeartbeat),
		kgo.RebalanceTimeout(20 * time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(300 * time.Millisecond),
		kgo.AutoCommitInterval(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(assigned),
		kgo.OnPartitionsRevoked(revoked),
		kgo.OnPartitionsLost(lost),
	}
	if spec.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(spec.InstanceID))
	}
	if spec.ServerSide {
		opts = append(opts, kgo.ServerSideBalancer())
	}
	return opts
}

func (m *member) onAssigned(parts []int32) {
	m.log.assigned(m.name, parts)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range parts {
		m.owned[p] = true
	}
	if len(parts) > 0 {
		m.assigned++
	}
}

func (m *member) onRevoked(parts []int32, committed map[int32]kgo.EpochOffset) {
	offs := map[int32]int64{}
	for p, eo := range committed {
		offs[p] = eo.Offset
	}
	m.log.revoked(m.name, parts, offs)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range parts {
		delete(m.owned, p)
	}
	m.revokes = append(m.revokes, parts...)
}

func (m *member) onLost(parts []int32) {
	m.log.lost(m.name, parts)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range parts {
		delete(m.owned, p)
	}
	m.losts = append(m.losts, parts...)
}

func (m *member) poll(ctx context.Context) {
	defer close(m.done)
	for {
		fs := m.cl.PollRecords(ctx, 500)
		_, gen := m.cl.GroupMetadata()
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) {
				m.log.problemf("%s: fetch %s/%d: %v", m.name, topic, p, err)
			}
		})
		// Records returned with the cancellation count as polled: the
		// commit at close covers them, so they must be processed too.
		m.log.consumed(m.name, gen, fs.Records())
		m.cl.AllowRebalance()
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
	}
}

// ownedSet returns the partitions the member holds now, sorted.
func (m *member) ownedSet() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int32, 0, len(m.owned))
	for p := range m.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (m *member) history() (revokes, losts []int32, assigned int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.revokes), slices.Clone(m.losts), m.assigned
}

func (m *member) generation() int32 {
	_, g := m.cl.GroupMetadata()
	return g
}

// close stops polling and closes the client, which leaves the group
// (a static member does not leave: that is the point of an instance id).
func (m *member) close(t testing.TB) {
	m.closeOnce.Do(func() {
		m.cancel()
		<-m.done
		closed := make(chan struct{})
		go func() {
			m.cl.CloseAllowingRebalance()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			t.Errorf("member %s: client Close did not return within 30 s", m.name)
		}
	})
}

// wantAssignment waits until the members own exactly the partition counts
// in sizes (same order), disjoint, covering 0..total-1.
func wantAssignment(t testing.TB, total int32, what string, owned ...func() []int32) {
	t.Helper()
	eventually(t, groupSettle, what, func() error {
		return checkSplit(total, owned...)
	})
}

// checkSplit reports unless the sets are disjoint, cover 0..total-1 and
// differ in size by at most one (what range and sticky balancers give).
func checkSplit(total int32, owned ...func() []int32) error {
	seen := map[int32]int{}
	var sizes []int
	for i, f := range owned {
		s := f()
		sizes = append(sizes, len(s))
		for _, p := range s {
			if j, dup := seen[p]; dup {
				return fmt.Errorf("partition %d held by members %d and %d", p, j, i)
			}
			seen[p] = i
		}
	}
	if int32(len(seen)) != total {
		return fmt.Errorf("%d of %d partitions held (sizes %v)", len(seen), total, sizes)
	}
	lo, hi := slices.Min(sizes), slices.Max(sizes)
	if hi-lo > 1 {
		return fmt.Errorf("uneven split %v", sizes)
	}
	return nil
}

// childMember is a group member in a child process (this test binary
// re-executed), so a test can crash it with SIGKILL: no LeaveGroup, its
// connections dropped by the kernel, exactly like a consumer process dying.
type childMember struct {
	cmd  *exec.Cmd
	done chan struct{}
	out  lockedBuffer

	mu    sync.Mutex
	owned []int32
}

func startChildMember(t testing.TB, spec memberSpec) *childMember {
	t.Helper()
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestGroupMemberHelperProcess$", "-test.count=1", "-test.timeout=150s")
	// SLUICE_BIN keeps the child's TestMain from building the broker; its
	// TMPDIR is ours to clean, as its TestMain's temp dir outlives a kill.
	cmd.Env = append(os.Environ(), memberEnv+"="+string(js), "SLUICE_BIN="+sluiceBin, "TMPDIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	c := &childMember{cmd: cmd, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &c.out
	runtime.LockOSThread() // Pdeathsig belongs to the forking thread
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatalf("start child member: %v", err)
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			c.out.WriteString(line + "\n")
			if rest, ok := strings.CutPrefix(line, "owned:"); ok {
				c.setOwned(rest)
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		c.kill(t)
		if t.Failed() {
			t.Logf("child member output (tail):\n%s", tail(c.out.String(), 3000))
		}
	})
	return c
}

func (c *childMember) setOwned(list string) {
	var owned []int32
	for _, f := range strings.Split(strings.TrimSpace(list), ",") {
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err == nil {
			owned = append(owned, int32(p))
		}
	}
	c.mu.Lock()
	c.owned = owned
	c.mu.Unlock()
}

func (c *childMember) ownedSet() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.owned)
}

// kill SIGKILLs the child's process group and reaps it.
func (c *childMember) kill(t testing.TB) {
	select {
	case <-c.done:
		return
	default:
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		t.Errorf("child member pid %d not reaped 20 s after SIGKILL", c.cmd.Process.Pid)
	}
}

// TestGroupMemberHelperProcess is not a test: it is the body of a child
// member (see startChildMember), run only when memberEnv is set. It
// prints "owned:p,p,..." after every change of its assignment and
// consumes until it is killed or its own bound passes.
func TestGroupMemberHelperProcess(t *testing.T) {
	js := os.Getenv(memberEnv)
	if js == "" {
		t.Skip("the body of a child group member; runs only when re-executed by a group test")
	}
	var spec memberSpec
	if err := json.Unmarshal([]byte(js), &spec); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	owned := map[int32]bool{}
	report := func() {
		ps := make([]int, 0, len(owned))
		for p := range owned {
			ps = append(ps, int(p))
		}
		sort.Ints(ps)
		strs := make([]string, len(ps))
		for i, p := range ps {
			strs[i] = strconv.Itoa(p)
		}
		fmt.Printf("owned:%s\n", strings.Join(strs, ","))
	}
	update := func(parts []int32, add bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range parts {
			if add {
				owned[p] = true
			} else {
				delete(owned, p)
			}
		}
		report()
	}
	opts := append(memberOpts(spec,
		func(_ context.Context, _ *kgo.Client, a map[string][]int32) { update(a[spec.Topic], true) },
		func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			_ = cl.CommitUncommittedOffsets(ctx)
			update(r[spec.Topic], false)
		},
		func(_ context.Context, _ *kgo.Client, l map[string][]int32) { update(l[spec.Topic], false) },
	), kgo.SeedBrokers(spec.Addr), kgo.ClientID("sluice-e2e-child"), kgo.DialTimeout(5*time.Second))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(topic string, p int32, err error) {
			fmt.Fprintf(os.Stderr, "fetch %s/%d: %v\n", topic, p, err)
		})
	}
}

// produceSpread produces values prefix-from..prefix-(to-1) keyed so they
// spread over the partitions, in batches, acks=all, and records where
// each landed in at (value -> partition, offset).
func produceSpread(t testing.TB, cl *kgo.Client, topic, prefix string, from, to int, at map[string][2]int64) {
	t.Helper()
	ctx := testCtx(t)
	const batch = 100
	for i := from; i < to; i += batch {
		var rs []*kgo.Record
		for j := i; j < min(i+batch, to); j++ {
			rs = append(rs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", j), Value: fmt.Appendf(nil, "%s-%06d", prefix, j)})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce %s %d..%d: %v", prefix, i, i+len(rs), err)
		}
		for _, r := range rs {
			at[string(r.Value)] = [2]int64{int64(r.Partition), r.Offset}
		}
	}
}

// explainMissing describes records never consumed: where they are, who
// holds their partitions, how far each partition was consumed, and what
// the group committed — enough to tell a test bug from a broker bug.
func (l *groupLog) explainMissing(t testing.TB, adm *kadm.Client, group, topic string, at map[string][2]int64) {
	l.mu.Lock()
	seen := map[string]bool{}
	maxConsumed := map[int32]int64{}
	for _, d := range l.deliveries {
		seen[d.value] = true
		maxConsumed[d.partition] = max(maxConsumed[d.partition], d.offset+1)
	}
	owners := maps.Clone(l.owner)
	l.mu.Unlock()
	missing := map[int32][]int64{}
	for v, po := range at {
		if !seen[v] {
			missing[int32(po[0])] = append(missing[int32(po[0])], po[1])
		}
	}
	committed, err := adm.FetchOffsets(testCtx(t), group)
	for p, offs := range missing {
		slices.Sort(offs)
		c, _ := committed.Lookup(topic, p)
		t.Logf("partition %d: never consumed offsets %s; held by %q; consumed up to %d; committed %d (%v)",
			p, spans(offs), owners[p], maxConsumed[p], c.At, err)
	}
}

// producePerPartition produces n records to each of partitions 0..parts-1
// with values prefix-p-i, acks=all, and returns them.
func producePerPartition(t testing.TB, addr, topic, prefix string, parts int32, n int) []string {
	t.Helper()
	cl := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	var rs []*kgo.Record
	var vals []string
	for p := int32(0); p < parts; p++ {
		for i := 0; i < n; i++ {
			v := fmt.Sprintf("%s-%d-%04d", prefix, p, i)
			vals = append(vals, v)
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)})
		}
	}
	if err := cl.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	return vals
}
