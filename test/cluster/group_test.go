package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterGroupSurvivesCoordinatorKill commits part of what a group
// consumed, kills the group's coordinator with SIGKILL, and requires a new
// member of the group to resume exactly at the committed offsets: nothing
// committed is redelivered, nothing uncommitted is skipped.
// __consumer_offsets has replication factor 3 (baseSets).
func TestClusterGroupSurvivesCoordinatorKill(t *testing.T) {
	rng := seeded(t)
	c := startCluster(t, 3, clusterOpts{})
	const topic, partitions, group = "group-input", 3, "survivors"
	c.createTopic(t, topic, partitions)
	prod := c.client(t, nil, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(30*time.Second)) // ProduceSync's ctx does not end a retrying record
	produceN(t, prod, 0, 300)

	first := c.client(t, nil, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond), kgo.SessionTimeout(6*time.Second), kgo.RebalanceTimeout(10*time.Second))
	polled := pollAtLeast(t, first, 100+rng.IntN(100))
	// Commit a prefix only: the rest was delivered but not committed and
	// must come again.
	commit := polled[:len(polled)/2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := first.CommitRecords(ctx, commit...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	committed := map[int32]int64{}
	for _, r := range commit {
		committed[r.Partition] = max(committed[r.Partition], r.Offset+1)
	}
	t.Logf("polled %d, committed %v", len(polled), committed)

	adm := c.admin(t)
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil || described[group].Err != nil {
		t.Fatalf("DescribeGroups: %v %v", err, described[group].Err)
	}
	victim := c.node(described[group].Coordinator.NodeID)
	t.Logf("killing node %d, coordinator of group %s", victim.id, group)
	victim.Kill()
	closeBounded(t, first, 20*time.Second)

	eventually(t, 45*time.Second, "committed offsets from the new coordinator", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return wantCommitted(ctx, adm, group, topic, committed)
	})
	t.Logf("the new coordinator serves the committed offsets")
	produceN(t, prod, 300, 60) // the partitions' leaders moved too
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}

	second := c.client(t, nil, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond), kgo.SessionTimeout(6*time.Second), kgo.RebalanceTimeout(10*time.Second))
	want := 0
	for p := range int32(partitions) {
		e, _ := ends.Lookup(topic, p)
		want += int(e.Offset - committed[p])
	}
	t.Logf("a new member resumes; %d records to read after the committed offsets", want)
	next := map[int32]int64{}
	for p := range int32(partitions) {
		next[p] = committed[p]
	}
	for _, r := range pollAtLeast(t, second, want) {
		if r.Offset != next[r.Partition] {
			t.Fatalf("resumed consumer got %d/%d, want offset %d next (committed %v)", r.Partition, r.Offset, next[r.Partition], committed)
		}
		next[r.Partition]++
	}
}

// produceN produces Value(1, from..from+n-1) synchronously, all partitions.
func produceN(t testing.TB, cl *kgo.Client, from, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for i := from; i < from+n; i++ {
		rs = append(rs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: []byte(Value(1, int64(i)))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce %d records: %v", n, err)
	}
}

// pollAtLeast polls until at least n records arrived (bounded) and returns
// them in delivery order.
func pollAtLeast(t testing.TB, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the bound", len(out), n)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s/%d: %v (retrying)", tp, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func wantCommitted(ctx context.Context, adm *kadm.Client, group, topic string, want map[int32]int64) error {
	got, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = got.Error()
	}
	if err != nil {
		return err
	}
	for p, off := range want {
		o, ok := got.Lookup(topic, p)
		if !ok || o.At != off {
			return fmt.Errorf("%s/%d: committed %+v, want %d", topic, p, o, off)
		}
	}
	return nil
}

// closeBounded closes a client whose coordinator may be gone (leaving the
// group can wait on it) within bound.
func closeBounded(t testing.TB, cl *kgo.Client, bound time.Duration) {
	done := make(chan struct{})
	go func() {
		cl.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(bound):
		t.Logf("client Close still waiting after %v; carrying on", bound)
	}
}
