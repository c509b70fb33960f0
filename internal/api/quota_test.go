package api

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/quota"
	"github.com/sluicelog/sluice/internal/wire"
)

// recordingThrottler stands in for the network server's connection.
type recordingThrottler struct {
	ms     int64
	before bool // a response was to be held back
}

func (r *recordingThrottler) Throttle(ms int64, afterResponse bool) {
	r.ms = max(r.ms, ms)
	r.before = r.before || !afterResponse
}

func setQuota(t *testing.T, h *harness, entity []metadata.QuotaEntityPart, key string, value float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := h.cp.Submit(ctx, kraft.AlterClientQuotas{Request: controller.AlterClientQuotasRequest{
		Entries: []controller.AlterClientQuotasEntry{{Entity: entity, Ops: []controller.QuotaOp{{Key: key, Value: value}}}}}})
	if err != nil || resp.(controller.AlterClientQuotasResponse).Entries[0].Err != nil {
		t.Fatalf("set quota: %v %+v", err, resp)
	}
}

// serveThrottled serves req with a throttler in the context and returns
// the encoded response frame and the mute asked for.
func serveThrottled(t *testing.T, h *harness, req kmsg.Request) ([]byte, int64) {
	t.Helper()
	th := &recordingThrottler{}
	ctx, cancel := context.WithTimeout(quota.WithThrottler(context.Background(), th), 30*time.Second)
	defer cancel()
	out, err := h.server.Serve(ctx, "127.0.0.1:1", h.frame(req))
	if err != nil {
		t.Fatal(err)
	}
	if out == nil {
		return nil, th.ms
	}
	defer out.Release()
	var buf writeBuffer
	if _, err := out.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf, th.ms
}

func TestQuotaProduceThrottled(t *testing.T) {
	h := newAdminHarness(t, Config{})
	h.broker.Quotas = quota.NewManager(quota.WindowConfig{Samples: 11, WindowMs: 1000})
	dpCreateTopic(t, h, "q", 1)
	// The harness's client id is "test"; the quota is on it.
	setQuota(t, h, []metadata.QuotaEntityPart{{Type: "client-id", Name: "test"}}, metadata.QuotaProducerByteRate, 1024)

	batch := dpBatch(t, "q", 4, dpBatchOptions{valueSize: 1000})
	// 4 KB is within 10 s × 1 KiB/s: not throttled.
	frame, muted := serveThrottled(t, h, dpProduceRequest(9, 1, "q", map[int32][]byte{0: batch}))
	resp := h.decode(dpProduceRequest(9, 1, "q", nil), frame).(*kmsg.ProduceResponse)
	if resp.ThrottleMillis != 0 || muted != 0 {
		t.Fatalf("first produce throttled %d ms, muted %d", resp.ThrottleMillis, muted)
	}
	// Three more go over: the response says so and the connection is muted
	// for as long.
	var last *kmsg.ProduceResponse
	for range 3 {
		req := dpProduceRequest(9, 1, "q", map[int32][]byte{0: batch})
		frame, muted = serveThrottled(t, h, req)
		last = h.decode(req, frame).(*kmsg.ProduceResponse)
	}
	if last.ThrottleMillis <= 0 || int64(last.ThrottleMillis) != muted {
		t.Fatalf("over quota: throttle_time_ms %d, muted %d ms", last.ThrottleMillis, muted)
	}
	// Produce v6 is KIP-219's: v5 asks the broker to hold the response
	// back, v9 to answer at once and mute.
	for _, c := range []struct {
		version int16
		before  bool
	}{{5, true}, {9, false}} {
		th := &recordingThrottler{}
		ctx, cancel := context.WithTimeout(quota.WithThrottler(context.Background(), th), 30*time.Second)
		out, err := h.server.Serve(ctx, "127.0.0.1:1", h.frame(dpProduceRequest(c.version, 1, "q", map[int32][]byte{0: batch})))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		out.Release()
		if th.ms <= 0 || th.before != c.before {
			t.Fatalf("produce v%d: throttled %d ms, held back %v; want held back %v", c.version, th.ms, th.before, c.before)
		}
	}
	if code := last.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("a throttled produce is still appended, got code %d", code)
	}

	// acks=0 has no response but is muted all the same.
	_, muted = serveThrottled(t, h, dpProduceRequest(9, 0, "q", map[int32][]byte{0: batch}))
	if muted <= 0 {
		t.Fatal("acks=0 produce over quota was not muted")
	}

	// Another client id has no quota.
	if h.broker.Quotas.NumSensors() != 1 {
		t.Fatalf("%d sensors", h.broker.Quotas.NumSensors())
	}
}

func TestQuotaFetchBoundedAndThrottled(t *testing.T) {
	h := newAdminHarness(t, Config{})
	h.broker.Quotas = quota.NewManager(quota.WindowConfig{Samples: 3, WindowMs: 1000})
	dpCreateTopic(t, h, "f", 1)
	for range 8 {
		dpProduce(t, h, 9, "f", 0, dpBatch(t, "f", 1, dpBatchOptions{valueSize: 1000}))
	}
	// 500 B/s over (3-1) windows of 1 s: at most 1000 bytes a response,
	// which still returns one whole batch (KIP-74) but no second one.
	setQuota(t, h, []metadata.QuotaEntityPart{{Type: "user", Name: "ANONYMOUS"}}, metadata.QuotaConsumerByteRate, 500)
	req := dpFetchRequest(12, 0, 0, dpFetchPart{topic: "f", partition: 0, offset: 0})
	frame, muted := serveThrottled(t, h, req)
	resp := dpDecodeFetch(t, req, frame)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) == 0 || len(p.RecordBatches) > 1100 {
		t.Fatalf("fetch under quota returned %d record bytes (code %d), want one batch", len(p.RecordBatches), p.ErrorCode)
	}
	if resp.ThrottleMillis <= 0 || int64(resp.ThrottleMillis) != muted {
		t.Fatalf("throttle_time_ms %d, muted %d", resp.ThrottleMillis, muted)
	}
}

// TestQuotaRequestPercentage: handling time is charged as a percentage of
// a second; over request_percentage the response says so and the
// connection is muted; a key whose time is waiting is not charged.
func TestQuotaRequestPercentage(t *testing.T) {
	h := newAdminHarness(t, Config{})
	h.broker.Quotas = quota.NewManager(quota.WindowConfig{Samples: 2, WindowMs: 1000})
	setQuota(t, h, []metadata.QuotaEntityPart{{Type: "user", Default: true}}, metadata.QuotaRequestPercentage, 10)
	clientID := "busy"
	request := func(key int16) *Request {
		return &Request{Header: wire.RequestHeader{APIKey: key, ClientID: &clientID}, Principal: auth.Anonymous}
	}
	th := &recordingThrottler{}
	ctx := quota.WithThrottler(context.Background(), th)

	// A JoinGroup that waited 500 ms is not charged.
	join := kmsg.NewPtrJoinGroupResponse()
	h.broker.throttleResponse(ctx, request(11), 100, 500*time.Millisecond, join)
	if join.ThrottleMillis != 0 || th.ms != 0 {
		t.Fatalf("JoinGroup's wait was charged: throttle %d, muted %d", join.ThrottleMillis, th.ms)
	}
	// OffsetCommit and the transaction APIs are charged their handler's
	// time: only their wait for the coordinator's write is not
	// (TestQuotaRequestTimeSkipsCoordinatorWaits), so a client flooding
	// one of them is throttled as any other.
	for _, key := range []int16{8, 24, 25, 26, 28} {
		h.broker.Quotas = quota.NewManager(quota.WindowConfig{Samples: 2, WindowMs: 1000})
		th := &recordingThrottler{}
		resp := kmsg.ResponseForKey(key)
		h.broker.throttleResponse(quota.WithThrottler(context.Background(), th), request(key), 100, 500*time.Millisecond, resp)
		if th.ms != 2000 {
			t.Fatalf("%s's handler time was not charged: muted %d ms, want 2000", kmsg.NameForKey(key), th.ms)
		}
	}
	h.broker.Quotas = quota.NewManager(quota.WindowConfig{Samples: 2, WindowMs: 1000})
	// 500 ms of Metadata is 50% of a second against 10%: (50-10)/10 × 1 s,
	// capped at the 2 s the windows span.
	md := kmsg.NewPtrMetadataResponse()
	h.broker.throttleResponse(ctx, request(3), 100, 500*time.Millisecond, md)
	if md.ThrottleMillis != 2000 || th.ms != 2000 {
		t.Fatalf("throttle_time_ms %d, muted %d; want 2000", md.ThrottleMillis, th.ms)
	}
}

// TestQuotaRequestTimeSkipsProduceWaits: a produce is charged its
// handler's work, not its wait for durability and the ISR, which Kafka
// parks in purgatory uncharged (KIP-124). A client at 10%
// request_percentage produces acks=all to a partition whose follower
// never fetches; ten seconds of the broker's clock pass while it waits,
// and none of them is charged, whether the response is deferred (as the
// node serves) or not.
func TestQuotaRequestTimeSkipsProduceWaits(t *testing.T) {
	for _, deferred := range []bool{false, true} {
		t.Run(fmt.Sprintf("deferred=%v", deferred), func(t *testing.T) {
			h, clk := requestQuotaHarness(t, deferred)
			registerAndUnfence(t, h.cp, 2) // a follower that never fetches
			quotaCreateTopic(t, h, "slow", []int32{1, 2})

			req := dpProduceRequest(9, -1, "slow", map[int32][]byte{0: dpBatch(t, "a", 1, dpBatchOptions{})})
			req.TimeoutMillis = 300 // the wait ends with the produce timeout
			type served struct {
				frame []byte
				muted int64
				err   error
			}
			answered := make(chan served, 1)
			go func() {
				th := &recordingThrottler{}
				ctx, cancel := context.WithTimeout(quota.WithThrottler(context.Background(), th), 30*time.Second)
				defer cancel()
				out, err := h.server.Serve(ctx, "127.0.0.1:1", h.frame(req))
				var buf writeBuffer
				if err == nil {
					_, err = out.WriteTo(&buf)
					out.Release()
				}
				answered <- served{buf, th.ms, err}
			}()
			waitBlockedIn(t, "partition.(*Partition).waitCommitted(")
			clk.Advance(10 * time.Second)
			got := <-answered
			if got.err != nil {
				t.Fatal(got.err)
			}
			resp := h.decode(req, got.frame).(*kmsg.ProduceResponse)
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.RequestTimedOut.Code {
				t.Fatalf("produce answered %v, want REQUEST_TIMED_OUT after its wait", kerr.ErrorForCode(code))
			}
			if resp.ThrottleMillis != 0 || got.muted != 0 {
				t.Fatalf("the produce's wait for the ISR was charged: throttle_time_ms %d, muted %d ms", resp.ThrottleMillis, got.muted)
			}
		})
	}
}

// quotaCreateTopic creates topic with one partition on replicas.
func quotaCreateTopic(t *testing.T, h *harness, topic string, replicas []int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := h.cp.Submit(ctx, kraft.CreateTopics{Request: controller.CreateTopicsRequest{Topics: []controller.CreatableTopic{{
		Name: topic, NumPartitions: -1, ReplicationFactor: -1,
		Assignments: []controller.ReplicaAssignment{{Partition: 0, Replicas: replicas}}}}}})
	if err != nil || resp.(controller.CreateTopicsResponse).Topics[0].Err != nil {
		t.Fatalf("create %s: %v %+v", topic, err, resp)
	}
}

// waitBlockedIn waits (at most 20 s) until a goroutine is blocked in frame.
func waitBlockedIn(t *testing.T, frame string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !goroutineBlockedIn(frame) {
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine reached %s\n%s", frame, allStacks())
		}
		time.Sleep(time.Millisecond)
	}
}

// quotaSlowCoordinator is a group and transaction coordinator whose
// every write takes ten seconds of the broker's clock to replicate.
type quotaSlowCoordinator struct {
	Groups // nil: only the calls below are made
	Txns
	clk *clock.Manual
}

func (c *quotaSlowCoordinator) replicate() { c.clk.Advance(10 * time.Second) }

func (c *quotaSlowCoordinator) AddPartitions(context.Context, coord.TxnProducer, []coord.TxnTopicPartition) error {
	c.replicate()
	return nil
}

func (c *quotaSlowCoordinator) AddOffsets(context.Context, coord.TxnProducer, string) error {
	c.replicate()
	return nil
}

func (c *quotaSlowCoordinator) EndTxn(context.Context, coord.TxnProducer, bool) error {
	c.replicate()
	return nil
}

func (c *quotaSlowCoordinator) CommitOffsets(_ context.Context, req coord.CommitRequest) (coord.CommitResult, error) {
	c.replicate()
	return quotaCommitted(req.Topics), nil
}

func (c *quotaSlowCoordinator) TxnCommitOffsets(_ context.Context, req coord.TxnCommitRequest, _ uint64) (coord.CommitResult, error) {
	c.replicate()
	return quotaCommitted(req.Topics), nil
}

func (c *quotaSlowCoordinator) PartitionFor(string) int32 { return 0 }

// FindCoordinator is in both interfaces; no call here makes it.
func (c *quotaSlowCoordinator) FindCoordinator(context.Context, string) (int32, error) {
	return 0, errors.New("not asked")
}

func quotaCommitted(topics []coord.CommitTopic) coord.CommitResult {
	var res coord.CommitResult
	for _, t := range topics {
		rt := coord.CommitTopicResult{Name: t.Name}
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, coord.CommitPartitionResult{Partition: p.Partition})
		}
		res.Topics = append(res.Topics, rt)
	}
	return res
}

// TestQuotaRequestTimeSkipsCoordinatorWaits: OffsetCommit and the
// transaction APIs are charged their handler's work (TestQuotaRequestPercentage),
// not their wait for the coordinator's write to replicate, which Kafka
// answers from a callback on no request thread (KIP-124). Each call here
// takes ten seconds of the broker's clock, against a 10%
// request_percentage: none of them is charged.
func TestQuotaRequestTimeSkipsCoordinatorWaits(t *testing.T) {
	h, clk := requestQuotaHarness(t, false)
	dpCreateTopic(t, h, "t", 1)
	slow := &quotaSlowCoordinator{clk: clk}
	h.broker.Groups, h.broker.Txns = slow, slow

	addPartitions := kmsg.NewPtrAddPartitionsToTxnRequest()
	addPartitions.SetVersion(3)
	addPartitions.TransactionalID = "app"
	addPartitions.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	addOffsets := kmsg.NewPtrAddOffsetsToTxnRequest()
	addOffsets.SetVersion(3)
	addOffsets.TransactionalID, addOffsets.Group = "app", "g"
	endTxn := kmsg.NewPtrEndTxnRequest()
	endTxn.SetVersion(3)
	endTxn.TransactionalID, endTxn.Commit = "app", true
	txnCommit := kmsg.NewPtrTxnOffsetCommitRequest()
	txnCommit.SetVersion(3)
	txnCommit.TransactionalID, txnCommit.Group, txnCommit.Generation = "app", "g", -1
	txnCommit.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.SetVersion(8)
	commit.Group, commit.Generation = "g", -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}

	for _, req := range []kmsg.Request{addPartitions, addOffsets, endTxn, txnCommit, commit} {
		before := clk.Now()
		frame, muted := serveThrottled(t, h, req)
		if waited := clk.Now().Sub(before); waited != 10*time.Second {
			// Refused before its coordinator, it waited for nothing, and
			// the check below would pass whatever the handler charges.
			t.Fatalf("%s waited %v for its coordinator, want one write of 10s", kmsg.NameForKey(req.Key()), waited)
		}
		resp := h.decode(req, frame).(kmsg.ThrottleResponse)
		if ms, _ := resp.Throttle(); ms != 0 || muted != 0 {
			t.Fatalf("%s's wait for its coordinator was charged: throttle_time_ms %d, muted %d ms", kmsg.NameForKey(req.Key()), ms, muted)
		}
	}
}

// TestQuotaRequestTimeSkipsProduceVerification: a transactional
// produce's wait for the transaction coordinator's verification
// (KIP-890) is not charged either: Kafka's produce hands the check to
// the coordinator and appends from its callback, on no request thread.
// The verification here takes ten seconds of the broker's clock, against
// a 10% request_percentage.
func TestQuotaRequestTimeSkipsProduceVerification(t *testing.T) {
	for _, deferred := range []bool{false, true} {
		t.Run(fmt.Sprintf("deferred=%v", deferred), func(t *testing.T) {
			h, clk := requestQuotaHarness(t, deferred)
			dpCreateTopic(t, h, "v", 1)
			verifier := &fakeVerifier{during: func() { clk.Advance(10 * time.Second) }}
			h.broker.TxnVerifier = verifier

			req := dpProduceRequest(9, 1, "v", map[int32][]byte{0: txnTestBatch(t, 5, 0, 1)})
			id := "app-1"
			req.TransactionID = &id
			frame, muted := serveThrottled(t, h, req)
			resp := h.decode(req, frame).(*kmsg.ProduceResponse)
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
				t.Fatalf("produce answered %v", kerr.ErrorForCode(code))
			}
			if len(verifier.asked) != 1 {
				t.Fatalf("the produce asked for %d verifications, want 1: its wait was not measured", len(verifier.asked))
			}
			if resp.ThrottleMillis != 0 || muted != 0 {
				t.Fatalf("the produce's wait for its verification was charged: throttle_time_ms %d, muted %d ms", resp.ThrottleMillis, muted)
			}
		})
	}
}

// requestQuotaHarness is a harness whose broker runs on a manual clock
// the test advances, with a request_percentage quota of 10% for every
// user; deferred serves responses as the node does.
func requestQuotaHarness(t *testing.T, deferred bool) (*harness, *clock.Manual) {
	t.Helper()
	h := newHarness(t, Config{})
	if deferred {
		h.server.DeferResponses()
	}
	clk := clock.NewManual(time.Now())
	h.broker.Clock = clk
	h.broker.Quotas = quota.NewManager(quota.WindowConfig{Samples: 2, WindowMs: 1000})
	setQuota(t, h, []metadata.QuotaEntityPart{{Type: "user", Default: true}}, metadata.QuotaRequestPercentage, 10)
	return h, clk
}

// TestQuotaRequestPercentageExemptsWriteTxnMarkers: WriteTxnMarkers, a
// transaction coordinator writing its markers to partition leaders (a
// cluster action), is not charged to request_percentage, as Kafka's
// handler answers it exempt from throttling: charged its appends and ISR
// wait, the coordinator's connection was muted, and every transaction
// whose markers go to this broker waited in PrepareCommit, its
// producer answered CONCURRENT_TRANSACTIONS and its partitions' LSO held.
// AddPartitionsToTxn v4 verify_only, which Kafka charges to the sending
// broker like any request (and Sluice accepts from any client), stays
// charged.
func TestQuotaRequestPercentageExemptsWriteTxnMarkers(t *testing.T) {
	h := newAdminHarness(t, Config{})
	setQuota(t, h, []metadata.QuotaEntityPart{{Type: "user", Default: true}}, metadata.QuotaRequestPercentage, 10)
	clientID := "broker-2"
	for _, c := range []struct {
		key     int16
		version int16
		muted   int64
	}{{27, 1, 0}, {24, 4, 2000}} {
		h.broker.Quotas = quota.NewManager(quota.WindowConfig{Samples: 2, WindowMs: 1000})
		th := &recordingThrottler{}
		r := &Request{Header: wire.RequestHeader{APIKey: c.key, APIVersion: c.version, ClientID: &clientID}, Principal: auth.Anonymous}
		resp := kmsg.ResponseForKey(c.key)
		resp.SetVersion(c.version)
		h.broker.throttleResponse(quota.WithThrottler(context.Background(), th), r, 100, 500*time.Millisecond, resp)
		if th.ms != c.muted {
			t.Errorf("%s v%d taking 500 ms: muted %d ms, want %d", kmsg.NameForKey(c.key), c.version, th.ms, c.muted)
		}
	}
}

// TestQuotaRequestPercentageChargesDeniedWriteTxnMarkers: WriteTxnMarkers
// is exempt from request_percentage only as the cluster action it is: a
// principal refused CLUSTER_ACTION is charged, as Kafka's handleError
// throttles a cluster action that failed its authorization. Exempt
// whatever its principal, any client could send it in a loop (each
// answered CLUSTER_AUTHORIZATION_FAILED for every partition it lists)
// and never be throttled.
func TestQuotaRequestPercentageChargesDeniedWriteTxnMarkers(t *testing.T) {
	h := newAdminHarness(t, Config{})
	setQuota(t, h, []metadata.QuotaEntityPart{{Type: "user", Default: true}}, metadata.QuotaRequestPercentage, 10)
	broker := auth.User("broker")
	h.broker.Config.Authorizer = &auth.AuthorizerConfig{SuperUsers: []string{broker.String()}}
	clientID := "c"
	for _, c := range []struct {
		principal auth.Principal
		muted     int64
	}{{broker, 0}, {auth.Anonymous, 2000}} {
		h.broker.Quotas = quota.NewManager(quota.WindowConfig{Samples: 2, WindowMs: 1000})
		th := &recordingThrottler{}
		r := &Request{Header: wire.RequestHeader{APIKey: 27, APIVersion: 1, ClientID: &clientID}, Principal: c.principal}
		resp := kmsg.NewPtrWriteTxnMarkersResponse()
		resp.SetVersion(1)
		h.broker.throttleResponse(quota.WithThrottler(context.Background(), th), r, 100, 500*time.Millisecond, resp)
		if th.ms != c.muted {
			t.Errorf("WriteTxnMarkers of %s taking 500 ms: muted %d ms, want %d", c.principal, th.ms, c.muted)
		}
	}
}
