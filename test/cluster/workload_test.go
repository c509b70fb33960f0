package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// producer sends Value(id, seq) records round-robin over a topic's
// partitions, continuously, with acks=all and idempotence, and records
// every acknowledgement.
type producer struct {
	id     int
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	acks    []Ack
	failed  int
	lastErr error
}

// startProducer starts producing at most about one record per pace.
func startProducer(t testing.TB, c *cluster, id int, topic string, partitions int32, pace time.Duration) *producer {
	t.Helper()
	p := &producer{id: id, done: make(chan struct{})}
	p.cl = c.client(t, nil,
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), // the default with idempotence; stated
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.MaxBufferedRecords(500),
		kgo.RecordDeliveryTimeout(20*time.Second),
		kgo.ProduceRequestTimeout(5*time.Second),
	)
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.run(ctx, partitions, pace)
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *producer) run(ctx context.Context, partitions int32, pace time.Duration) {
	defer close(p.done)
	for seq := int64(0); ctx.Err() == nil; seq++ {
		r := &kgo.Record{Partition: int32(seq % int64(partitions)), Value: []byte(Value(p.id, seq))}
		p.cl.Produce(ctx, r, func(r *kgo.Record, err error) { p.record(seq, r, err) })
		time.Sleep(pace)
	}
}

func (p *producer) record(seq int64, r *kgo.Record, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failed++
		if !errors.Is(err, context.Canceled) {
			p.lastErr = err
		}
		return
	}
	p.acks = append(p.acks, Ack{Producer: p.id, Seq: seq, Partition: r.Partition, Offset: r.Offset})
}

// stop ends production, waits (bounded) for records in flight, and closes
// the client; the acknowledgements are final afterwards. Idempotent.
func (p *producer) stop(t testing.TB) {
	p.cancel()
	<-p.done
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := p.cl.Flush(ctx); err != nil {
		t.Logf("producer %d: flush: %v (records still in flight fail)", p.id, err)
	}
	p.cl.Close()
}

// acked returns how many records were acknowledged so far.
func (p *producer) acked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acks)
}

func (p *producer) history() []Ack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acks)
}

func (p *producer) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("producer %d: %d acknowledged, %d failed (last error: %v)", p.id, len(p.acks), p.failed, p.lastErr)
}

// waitProgress waits until n more records than now are acknowledged.
func (p *producer) waitProgress(t testing.TB, n int, bound time.Duration, what string) {
	t.Helper()
	target := p.acked() + n
	eventually(t, bound, what, func() error {
		if got := p.acked(); got < target {
			return fmt.Errorf("%d acknowledged, want %d; %s", got, target, p.summary())
		}
		return nil
	})
}

// settle waits until every partition has a leader and a full ISR, asked of
// a node outside except: the state in which a read sees everything.
func (c *cluster) settle(t testing.TB, topic string, partitions int32, bound time.Duration) {
	t.Helper()
	eventually(t, bound, fmt.Sprintf("every partition of %s led with a full ISR", topic), func() error {
		for p := range partitions {
			v, err := c.viewFromAny(t, topic, p)
			if err != nil {
				return err
			}
			if v.leader < 0 || len(v.isr) != len(v.replicas) {
				return fmt.Errorf("%s/%d: %v", topic, p, v)
			}
		}
		return nil
	})
}

// readAll reads every partition from its log start to its high watermark,
// as a consumer sees it.
func (c *cluster) readAll(t testing.TB, topic string, partitions int32) map[int32][]Stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends, err := c.admin(t).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListEndOffsets %s: %v", topic, err)
	}
	out := map[int32][]Stored{}
	from := map[int32]kgo.Offset{}
	remaining := 0
	for p := range partitions {
		e, ok := ends.Lookup(topic, p)
		if !ok || e.Err != nil {
			t.Fatalf("end offset of %s/%d: %+v", topic, p, e)
		}
		out[p] = nil
		if e.Offset > 0 {
			from[p] = kgo.NewOffset().At(0)
			remaining++
		}
	}
	hw := func(p int32) int64 { e, _ := ends.Lookup(topic, p); return e.Offset }
	cl := c.client(t, nil, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchMaxWait(500*time.Millisecond))
	defer cl.Close()
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: bound passed with %d partitions short of their high watermark", topic, remaining)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Logf("fetch %s/%d: %v (retrying)", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= hw(r.Partition) {
				return // past the HW read at the start
			}
			out[r.Partition] = append(out[r.Partition], Stored{r.Offset, string(r.Value)})
			if r.Offset == hw(r.Partition)-1 {
				remaining--
			}
		})
	}
	return out
}

// checkHistory settles the cluster, reads the topic and fails the test
// with the first violations if the log disagrees with the acks.
func (c *cluster) checkHistory(t testing.TB, topic string, partitions int32, acks []Ack) {
	t.Helper()
	c.settle(t, topic, partitions, 60*time.Second)
	log := c.readAll(t, topic, partitions)
	stored := 0
	for _, rs := range log {
		stored += len(rs)
	}
	t.Logf("history: %d acknowledged, %d stored in %d partitions", len(acks), stored, partitions)
	if vs := CheckHistory(acks, log); len(vs) > 0 {
		t.Fatalf("history of %s violates the contract:\n%s", topic, FormatViolations(vs))
	}
}
