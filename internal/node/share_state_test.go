package node

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
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
