package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// failoverBound is the longest a failover may take before the test calls
// it missing; the figure itself is logged, not asserted.
const failoverBound = 30 * time.Second

// TestClusterFailoverTime kills a partition's leader with SIGKILL and
// measures the time to the first acks=all produce that succeeds on that
// partition afterwards. Run with -v to see the figure.
func TestClusterFailoverTime(t *testing.T) {
	seeded(t) // logged for the record; the run is not randomised
	c := startCluster(t, 3, clusterOpts{})
	const topic = "failover-time"
	c.createTopic(t, topic, 1)
	f := &failover{cl: failoverClient(t, c, topic)}
	for round := range short(1, 5) {
		took, victim := f.measure(t, c, topic)
		t.Logf("failover round %d: first acks=all produce %v after kill -9 of the leader", round, took.Round(time.Millisecond))
		victim.Restart()
		c.settle(t, topic, 1, 45*time.Second)
	}
	c.checkHistory(t, topic, 1, f.acks)
}

// BenchmarkClusterFailover reports the failover time as failover-ms (mean
// over b.N kills). go test -run '^$' -bench ClusterFailover -benchtime 3x ./test/cluster/
func BenchmarkClusterFailover(b *testing.B) {
	c := startCluster(b, 3, clusterOpts{})
	const topic = "failover-bench"
	c.createTopic(b, topic, 1)
	f := &failover{cl: failoverClient(b, c, topic)}
	var total time.Duration
	for i := 0; i < b.N; i++ {
		took, victim := f.measure(b, c, topic)
		total += took
		b.StopTimer()
		victim.Restart()
		c.settle(b, topic, 1, 45*time.Second)
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "failover-ms")
}

func failoverClient(t testing.TB, c *cluster, topic string) *kgo.Client {
	return c.client(t, nil, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0),
		kgo.ProduceRequestTimeout(3*time.Second), kgo.RecordDeliveryTimeout(10*time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
}

// failover is one producer's state across measurements: seq never
// repeats, so a record whose ack was lost is never mistaken for another.
type failover struct {
	cl   *kgo.Client
	seq  int64
	acks []Ack
}

func (f *failover) produce(bound time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	seq := f.seq
	f.seq++
	r := &kgo.Record{Partition: 0, Value: []byte(Value(1, seq))}
	err := f.cl.ProduceSync(ctx, r).FirstErr()
	if err == nil {
		f.acks = append(f.acks, Ack{1, seq, 0, r.Offset})
	}
	return err
}

// measure produces until partition 0 acknowledges, kills its leader, and
// returns the time from the kill to the first acknowledged produce, and
// the killed node.
func (f *failover) measure(t testing.TB, c *cluster, topic string) (time.Duration, *node) {
	t.Helper()
	eventually(t, 30*time.Second, "a produce before the kill", func() error { return f.produce(5 * time.Second) })
	v := c.waitLeader(t, topic, 0, 10*time.Second)
	victim := c.node(v.leader)
	victim.Kill()
	killed := time.Now()
	eventually(t, failoverBound, "an acks=all produce after kill -9 of the leader", func() error { return f.produce(2 * time.Second) })
	return time.Since(killed), victim
}
