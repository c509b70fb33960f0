package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/record"
)

// throttleHook records the throttles franz-go is told about.
type throttleHook struct {
	mu    sync.Mutex
	times []time.Duration
}

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	h.mu.Lock()
	h.times = append(h.times, d)
	h.mu.Unlock()
}

func (h *throttleHook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, d := range h.times {
		if d > 0 {
			n++
		}
	}
	return n
}

func setClientQuota(t *testing.T, ctx context.Context, n *Node, clientID, key string, value float64) {
	t.Helper()
	adm := kadm.NewClient(client(t, n))
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &clientID}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: key, Value: value}}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("alter client quotas: %v %v", err, res)
	}
}

// TestNodeProducerByteRateQuota: a franz-go producer with a
// producer_byte_rate quota is told throttle_time_ms and its throughput
// stays near the quota. The check is an upper bound on bytes over the
// time they took, which a slow machine can only make easier to meet.
func TestNodeProducerByteRateQuota(t *testing.T) {
	n := startNode(t, t.TempDir(), "quota.window.num=2", "quota.window.size.seconds=1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(client(t, n)).CreateTopic(ctx, 1, 1, nil, "quota"); err != nil {
		t.Fatal(err)
	}
	const quota = 20 << 10
	setClientQuota(t, ctx, n, "slow-producer", "producer_byte_rate", quota)

	hook := &throttleHook{}
	p := client(t, n, kgo.ClientID("slow-producer"), kgo.DefaultProduceTopic("quota"), kgo.WithHooks(hook),
		kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	value := bytes.Repeat([]byte("x"), 4<<10)
	start := time.Now()
	var sent int
	for sent < 5*quota {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		sent += len(value)
	}
	took := time.Since(start)
	if hook.count() == 0 {
		t.Fatal("the producer was never told throttle_time_ms")
	}
	// One window's worth goes out before the sensor can hold it back; the
	// rest at the quota. Twice the quota leaves room for that burst.
	if rate := float64(sent) / took.Seconds(); rate > 2*quota {
		t.Fatalf("%d bytes in %v: %.0f B/s, quota %d B/s", sent, took, rate, quota)
	}
	t.Logf("%d bytes in %v (%.0f B/s against a quota of %d B/s), %d throttled responses",
		sent, took, float64(sent)/took.Seconds(), quota, hook.count())
}

// TestNodeThrottledConnectionIsMuted: over raw frames, a produce over the
// quota is answered at once with throttle_time_ms, and the next request on
// the same connection is not answered before that time has passed: the
// broker mutes the channel whatever the client does (KIP-219).
func TestNodeThrottledConnectionIsMuted(t *testing.T) {
	n := startNode(t, t.TempDir(), "quota.window.num=2", "quota.window.size.seconds=1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(client(t, n)).CreateTopic(ctx, 1, 1, nil, "muted"); err != nil {
		t.Fatal(err)
	}
	setClientQuota(t, ctx, n, "raw", "producer_byte_rate", 10_000)

	// A produce of about 15 kB: 1.5 times what the quota admits in the
	// 1 s span, so about 500 ms of throttle.
	produce := kmsg.NewPtrProduceRequest()
	produce.Version, produce.Acks, produce.TimeoutMillis = 9, 1, 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "muted"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = rawBatch(t, 15_000)
	rt.Partitions = append(rt.Partitions, rp)
	produce.Topics = append(produce.Topics, rt)
	metadata := kmsg.NewPtrMetadataRequest()
	metadata.Version = 9

	conn, err := net.DialTimeout("tcp", n.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	// Both requests at once: the second waits in the broker, not here.
	write := append(rawFrame(produce, 1, "raw"), rawFrame(metadata, 2, "raw")...)
	if _, err := conn.Write(write); err != nil {
		t.Fatal(err)
	}
	first := rawResponse(t, conn)
	firstAt := time.Now()
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 9
	if err := resp.ReadFrom(first[5:]); err != nil { // correlation id and the empty tags of header v1
		t.Fatal(err)
	}
	if resp.ThrottleMillis <= 0 {
		t.Fatalf("throttle_time_ms %d, want > 0", resp.ThrottleMillis)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce error code %d", code)
	}
	rawResponse(t, conn)
	if waited, want := time.Since(firstAt), time.Duration(resp.ThrottleMillis)*time.Millisecond*9/10; waited < want {
		t.Fatalf("second response %v after the throttled one, throttle_time_ms %d", waited, resp.ThrottleMillis)
	}
}

// rawBatch is one uncompressed batch of one record of about size bytes.
func rawBatch(t *testing.T, size int) []byte {
	t.Helper()
	b, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: -1, FirstTimestamp: time.Now().UnixMilli()},
		[]record.Record{{Value: bytes.Repeat([]byte("m"), size)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawFrame is a request frame with its size prefix and a v1 or v2 header.
func rawFrame(req kmsg.Request, correlationID int32, clientID string) []byte {
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// rawResponse reads one response frame, without its size prefix.
func rawResponse(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNodeMaxConnectionsPerIP: with max.connections.per.ip=1 a second
// connection from the same address is closed right after accept, and the
// refusal shows in the metrics.
func TestNodeMaxConnectionsPerIP(t *testing.T) {
	n := startNode(t, t.TempDir(), "max.connections.per.ip=1")
	first, err := net.DialTimeout("tcp", n.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	api := kmsg.NewPtrApiVersionsRequest()
	if _, err := first.Write(rawFrame(api, 1, "a")); err != nil {
		t.Fatal(err)
	}
	first.SetDeadline(time.Now().Add(10 * time.Second))
	rawResponse(t, first) // the first connection is served

	second, err := net.DialTimeout("tcp", n.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetDeadline(time.Now().Add(10 * time.Second))
	second.Write(rawFrame(api, 1, "b"))
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Fatal("the second connection from one address was served")
	}
	if got := series(t, scrapeNode(t, n), `sluice_connections_refused_total{reason="max.connections.per.ip"}`); got != 1 {
		t.Fatalf("refused connections metric %v, want 1", got)
	}
}

// TestNodeConsumerByteRateQuota: a franz-go consumer with a
// consumer_byte_rate quota is told throttle_time_ms, gets no more than
// the quota admits per response, and reads at most about its quota.
func TestNodeConsumerByteRateQuota(t *testing.T) {
	n := startNode(t, t.TempDir(), "quota.window.num=2", "quota.window.size.seconds=1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(client(t, n)).CreateTopic(ctx, 1, 1, nil, "reads"); err != nil {
		t.Fatal(err)
	}
	const quota, total = 20 << 10, 100 << 10
	// Uncompressed: the quota counts the bytes on the wire.
	p := client(t, n, kgo.DefaultProduceTopic("reads"), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	value := bytes.Repeat([]byte("r"), 2<<10)
	// One batch per record: a response is capped at the quota's worth of
	// batches, but always holds at least one whole batch (KIP-74).
	for sent := 0; sent < total; sent += len(value) {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	setClientQuota(t, ctx, n, "slow-consumer", "consumer_byte_rate", quota)

	hook := &throttleHook{}
	c := client(t, n, kgo.ClientID("slow-consumer"), kgo.ConsumeTopics("reads"), kgo.WithHooks(hook),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(1<<20))
	start := time.Now()
	read := 0
	for read < total {
		fetches := c.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatal(err)
		}
		fetches.EachRecord(func(r *kgo.Record) { read += len(r.Value) })
	}
	took := time.Since(start)
	if hook.count() == 0 {
		t.Fatal("the consumer was never told throttle_time_ms")
	}
	if rate := float64(read) / took.Seconds(); rate > 2*quota {
		t.Fatalf("%d bytes in %v: %.0f B/s, quota %d B/s", read, took, rate, quota)
	}
	t.Logf("%d bytes in %v (%.0f B/s against a quota of %d B/s), %d throttled responses",
		read, took, float64(read)/took.Seconds(), quota, hook.count())
}

// TestNodeQuotasReachEveryNode: a quota set through any broker is in the
// metadata log, so every node of a cluster describes it from its own
// image, and so enforces it.
func TestNodeQuotasReachEveryNode(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	user := "alice"
	res, err := kadm.NewClient(c.client()).AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 4096}}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("alter client quotas: %v %v", err, res)
	}
	cl := c.client()
	for id := int32(1); id <= 3; id++ {
		eventually(t, 20*time.Second, fmt.Sprintf("node %d describes alice's quota", id), func() bool {
			req := kmsg.NewPtrDescribeClientQuotasRequest()
			resp, err := cl.Broker(int(id)).RetriableRequest(ctx, req)
			if err != nil {
				return false
			}
			entries := resp.(*kmsg.DescribeClientQuotasResponse).Entries
			return len(entries) == 1 && len(entries[0].Values) == 1 && entries[0].Values[0].Value == 4096
		})
	}
}
