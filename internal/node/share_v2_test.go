package node

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ShareFetch and ShareAcknowledge v2 (Kafka 4.2): the record-limit acquire
// mode (KIP-1206) and RENEW acknowledgements (KIP-1222).

// shareTopic creates a one-partition topic holding n records produced in
// one batch (values "0", "1", ...), so a fetch limited to fewer records
// must cut inside a batch.
func shareTopic(t *testing.T, ctx context.Context, n *Node, topic string, records int) {
	t.Helper()
	if _, err := kadm.NewClient(client(t, n)).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	p := client(t, n, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Second))
	rs := make([]*kgo.Record, records)
	for i := range rs {
		rs[i] = &kgo.Record{Value: []byte(fmt.Sprint(i))}
	}
	if err := p.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// fetchV2 sends a ShareFetch v2 for partition 0 in the given acquire mode
// and returns the response.
func (m *shareMember) fetchV2(ctx context.Context, mode int8, maxRecords, waitMs int32) *kmsg.ShareFetchResponse {
	m.t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.Version = 2
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &m.group, &m.id, m.sess
	req.MaxWaitMillis, req.MaxBytes, req.MaxRecords, req.BatchSize = waitMs, 1<<20, maxRecords, maxRecords
	req.ShareAcquireMode = mode
	if m.sess == 0 {
		rt := kmsg.NewShareFetchRequestTopic()
		rt.TopicID = m.topic
		rt.Partitions = []kmsg.ShareFetchRequestTopicPartition{{Partition: 0}}
		req.Topics = []kmsg.ShareFetchRequestTopic{rt}
	}
	resp, err := req.RequestWith(ctx, m.cl)
	if err != nil {
		m.t.Fatalf("share fetch v2 of %s: %v", m.id, err)
	}
	if resp.ErrorCode == 0 {
		m.sess++
	}
	return resp
}

func acquiredOf(resp *kmsg.ShareFetchResponse) []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord {
	var out []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, p.AcquiredRecords...)
		}
	}
	return out
}

// acknowledgeV2 sends a ShareAcknowledge v2 of first..last with the given
// types and IsRenewAck, and returns the response and partition 0's error.
func (m *shareMember) acknowledgeV2(ctx context.Context, renew bool, first, last int64, types ...int8) (*kmsg.ShareAcknowledgeResponse, error) {
	m.t.Helper()
	req := kmsg.NewPtrShareAcknowledgeRequest()
	req.Version = 2
	req.GroupID, req.MemberID, req.ShareSessionEpoch, req.IsRenewAck = &m.group, &m.id, m.sess, renew
	rp := kmsg.NewShareAcknowledgeRequestTopicPartition()
	rp.AcknowledgementBatches = []kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{{FirstOffset: first, LastOffset: last, AcknowledgeTypes: types}}
	rt := kmsg.NewShareAcknowledgeRequestTopic()
	rt.TopicID, rt.Partitions = m.topic, []kmsg.ShareAcknowledgeRequestTopicPartition{rp}
	req.Topics = []kmsg.ShareAcknowledgeRequestTopic{rt}
	resp, err := req.RequestWith(ctx, m.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		m.t.Fatalf("share acknowledge v2 of %s: %v", m.id, err)
	}
	m.sess++
	return resp, kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

// TestNodeShareFetchV2RecordLimit: in record-limit mode a fetch acquires
// at most MaxRecords records even from inside one batch, the next fetch
// takes the next ones, and an acquire mode that is neither 0 nor 1, or a
// renewing fetch (IsRenewAck) with fetch limits, is INVALID_REQUEST.
func TestNodeShareFetchV2RecordLimit(t *testing.T) {
	n := startNode(t, t.TempDir(), "share.auto.offset.reset=earliest")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	shareTopic(t, ctx, n, "limited", 10)
	a := &shareMember{t: t, cl: client(t, n), group: "limited-group", id: "member-a"}
	a.heartbeat(ctx, []string{"limited"})

	bad := a.fetchV2(ctx, 7, 3, 0)
	if err := kerr.ErrorForCode(bad.ErrorCode); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("acquire mode 7: %v, want INVALID_REQUEST", err)
	}
	renewing := kmsg.NewPtrShareFetchRequest()
	renewing.Version, renewing.IsRenewAck = 2, true
	renewing.GroupID, renewing.MemberID, renewing.ShareSessionEpoch = &a.group, &a.id, a.sess
	renewing.MaxWaitMillis, renewing.MaxRecords = 500, 3
	if resp, err := renewing.RequestWith(ctx, a.cl); err != nil {
		t.Fatal(err)
	} else if err := kerr.ErrorForCode(resp.ErrorCode); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("a renewing fetch with fetch limits: %v, want INVALID_REQUEST", err)
	}
	first := a.fetchV2(ctx, 1, 3, 2000)
	if err := kerr.ErrorForCode(first.ErrorCode); err != nil {
		t.Fatalf("record-limit fetch: %v", err)
	}
	if got := acquiredString(acquiredOf(first)); got != "[0-2 delivery 1]" {
		t.Fatalf("record-limit fetch of 3 acquired %s, want [0-2 delivery 1]", got)
	}
	if got := acquiredString(acquiredOf(a.fetchV2(ctx, 1, 4, 2000))); got != "[3-6 delivery 1]" {
		t.Fatalf("next record-limit fetch of 4 acquired %s, want [3-6 delivery 1]", got)
	}
	// Batch-optimized mode may not exceed the limit here either.
	if got := acquiredString(acquiredOf(a.fetchV2(ctx, 0, 2, 2000))); got != "[7-8 delivery 1]" {
		t.Fatalf("batch-optimized fetch of 2 acquired %s, want [7-8 delivery 1]", got)
	}
}

// TestNodeShareAcknowledgeV2Renew: a RENEW restarts the acquisition lock
// (3 s here) of records the member holds, so another member does not get
// them when the first lock would have expired, and the holder can still
// accept them after it. Renewing records held by someone else is
// INVALID_RECORD_STATE; RENEW without IsRenewAck, and a type that is none
// of Kafka's, are INVALID_REQUEST.
func TestNodeShareAcknowledgeV2Renew(t *testing.T) {
	const lockMs = 3000
	n := startNode(t, t.TempDir(), "share.auto.offset.reset=earliest", fmt.Sprintf("group.share.record.lock.duration.ms=%d", lockMs))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	shareTopic(t, ctx, n, "slow", 5)
	a := &shareMember{t: t, cl: client(t, n), group: "slow-group", id: "member-a"}
	b := &shareMember{t: t, cl: client(t, n), group: "slow-group", id: "member-b"}
	a.heartbeat(ctx, []string{"slow"})
	b.heartbeat(ctx, []string{"slow"})
	acquiredAt := time.Now()
	if got := acquiredString(acquiredOf(a.fetchV2(ctx, 1, 100, 2000))); got != "[0-4 delivery 1]" {
		t.Fatalf("a acquired %s, want [0-4 delivery 1]", got)
	}
	b.fetchV2(ctx, 1, 100, 0) // opens b's session

	if _, err := b.acknowledgeV2(ctx, true, 0, 0, 4); !errors.Is(err, kerr.InvalidRecordState) {
		t.Errorf("b renewing a's record: %v, want INVALID_RECORD_STATE", err)
	}
	if _, err := a.acknowledgeV2(ctx, false, 0, 0, 4); !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("RENEW without IsRenewAck: %v, want INVALID_REQUEST", err)
	}
	if _, err := a.acknowledgeV2(ctx, true, 0, 0, 5); !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("acknowledge type 5: %v, want INVALID_REQUEST", err)
	}

	time.Sleep(time.Until(acquiredAt.Add(lockMs / 2 * time.Millisecond)))
	resp, err := a.acknowledgeV2(ctx, true, 0, 4, 4)
	if err != nil {
		t.Fatalf("a renewing its records: %v", err)
	}
	if resp.AcquisitionLockTimeoutMillis != lockMs {
		t.Errorf("ShareAcknowledge v2 says the lock is %d ms, want %d", resp.AcquisitionLockTimeoutMillis, lockMs)
	}
	// b waits past the first lock's end (acquiredAt+3 s), not to the
	// renewed one's (renewal+3 s): it must get nothing.
	wait := time.Until(acquiredAt.Add(lockMs*time.Millisecond)) + lockMs/4*time.Millisecond
	if got := acquiredString(acquiredOf(b.fetchV2(ctx, 1, 100, int32(wait.Milliseconds())))); got != "" {
		t.Fatalf("b acquired %s after a renewed its locks", got)
	}
	if _, err := a.acknowledgeV2(ctx, false, 0, 4, 1); err != nil {
		t.Fatalf("a accepting its renewed records past the first lock's end: %v", err)
	}
}

// alterGroupConfigs sets group configs with IncrementalAlterConfigs on
// the GROUP resource (type 32) and returns the resource's error.
func alterGroupConfigs(t *testing.T, ctx context.Context, cl *kgo.Client, group string, kvs ...string) error {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	for i := 0; i+1 < len(kvs); i += 2 {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = kvs[i], kmsg.StringPtr(kvs[i+1])
		res.Configs = append(res.Configs, c)
	}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return kerr.ErrorForCode(resp.Resources[0].ErrorCode)
}

// describeGroupConfigs returns name -> "value/source" of a group.
func describeGroupConfigs(t *testing.T, ctx context.Context, cl *kgo.Client, group string) map[string]string {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Resources[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("describe configs of group %s: %v", group, err)
	}
	out := map[string]string{}
	for _, c := range resp.Resources[0].Configs {
		out[c.Name] = fmt.Sprintf("%s/%s", *c.Value, c.Source)
	}
	return out
}

// TestNodeShareGroupConfigs: share.auto.offset.reset and
// share.record.lock.duration.ms set as GROUP configs before the group
// exists override the broker's (latest, 30 s): the first member reads from
// the log start, ShareFetch reports the group's lock, DescribeConfigs
// shows the values as GROUP_CONFIG, and they outlive a restart. Another
// group keeps the broker's values; an unknown key or a bad value is
// INVALID_CONFIG.
func TestNodeShareGroupConfigs(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	shareTopic(t, ctx, n, "backlog", 4)
	cl := client(t, n)
	if err := alterGroupConfigs(t, ctx, cl, "eager", "share.auto.offset.reset", "earliest", "share.record.lock.duration.ms", "15000"); err != nil {
		t.Fatalf("setting group configs: %v", err)
	}
	if err := alterGroupConfigs(t, ctx, cl, "eager", "share.delivery.count.limit", "3"); !errors.Is(err, kerr.InvalidConfig) {
		t.Errorf("an unknown group config: %v, want INVALID_CONFIG", err)
	}
	if err := alterGroupConfigs(t, ctx, cl, "eager", "share.auto.offset.reset", "sometimes"); !errors.Is(err, kerr.InvalidConfig) {
		t.Errorf("a bad share.auto.offset.reset: %v, want INVALID_CONFIG", err)
	}
	shutdown(t, n)

	n = startNode(t, dir)
	cl = client(t, n)
	got := describeGroupConfigs(t, ctx, cl, "eager")
	want := map[string]string{"share.auto.offset.reset": "earliest/GROUP_CONFIG", "share.record.lock.duration.ms": "15000/GROUP_CONFIG"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("configs of eager after a restart %v, want %v", got, want)
	}
	other := describeGroupConfigs(t, ctx, cl, "lazy")
	if other["share.auto.offset.reset"] != "latest/DEFAULT_CONFIG" {
		t.Errorf("configs of a group that set none: %v", other)
	}
	a := &shareMember{t: t, cl: cl, group: "eager", id: "member-a"}
	a.heartbeat(ctx, []string{"backlog"})
	resp := a.fetchV2(ctx, 1, 100, 2000)
	if got := acquiredString(acquiredOf(resp)); got != "[0-3 delivery 1]" {
		t.Errorf("eager's first member acquired %s, want the backlog [0-3 delivery 1]", got)
	}
	if resp.AcquisitionLockTimeoutMillis != 15000 {
		t.Errorf("ShareFetch reports a lock of %d ms, want eager's 15000", resp.AcquisitionLockTimeoutMillis)
	}
	b := &shareMember{t: t, cl: cl, group: "lazy", id: "member-b"}
	b.heartbeat(ctx, []string{"backlog"})
	resp = b.fetchV2(ctx, 1, 100, 200)
	if got := acquiredString(acquiredOf(resp)); got != "" || resp.AcquisitionLockTimeoutMillis != 30000 {
		t.Errorf("lazy's member acquired %q with a lock of %d ms, want nothing (latest) and 30000", got, resp.AcquisitionLockTimeoutMillis)
	}
}

// TestNodeShareFranzGoRenewAndStrictLimit: franz-go's own share consumer
// (kgo.ShareGroup) against ShareFetch and ShareAcknowledge v2. With
// ShareMaxRecordsStrict a poll returns at most ShareMaxRecords records
// from one batch. A member that renews (kgo.AckRenew) the records it holds
// keeps them past several lock durations (1.5 s here) while another member
// polls and never gets them; it then accepts them without an error.
func TestNodeShareFranzGoRenewAndStrictLimit(t *testing.T) {
	const lock = 1500 * time.Millisecond
	n := startNode(t, t.TempDir(), "share.auto.offset.reset=earliest", fmt.Sprintf("group.share.record.lock.duration.ms=%d", lock.Milliseconds()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	shareTopic(t, ctx, n, "long-jobs", 4)
	ackErrs := make(chan error, 100)
	onAck := kgo.ShareAckCallback(func(_ *kgo.Client, rs kgo.ShareAckResults) {
		for _, r := range rs {
			if r.Err != nil {
				ackErrs <- fmt.Errorf("%s-%d: %w", r.Topic, r.Partition, r.Err)
			}
		}
	})
	a := client(t, n, kgo.ConsumeTopics("long-jobs"), kgo.ShareGroup("renewers"), kgo.ShareMaxRecords(2), kgo.ShareMaxRecordsStrict(), onAck)
	var held []*kgo.Record
	for len(held) == 0 && ctx.Err() == nil {
		fetches := a.PollFetches(ctx)
		held = fetches.Records()
	}
	if len(held) != 2 || held[0].Offset != 0 || held[1].Offset != 1 {
		t.Fatalf("first strict poll of 2 got %d records (%v), want offsets 0 and 1", len(held), offsetsOf(held))
	}

	b := client(t, n, kgo.ConsumeTopics("long-jobs"), kgo.ShareGroup("renewers"), onAck)
	stop := make(chan struct{})
	seenByB := make(chan []int64, 1)
	go func() {
		var seen []int64
		defer func() { seenByB <- seen }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			pollCtx, pollCancel := context.WithTimeout(ctx, 200*time.Millisecond)
			seen = append(seen, offsetsOf(b.PollFetches(pollCtx).Records())...)
			pollCancel()
		}
	}()
	for end := time.Now().Add(3 * lock); time.Now().Before(end); {
		time.Sleep(lock / 3)
		for _, r := range held {
			r.Ack(kgo.AckRenew)
		}
		if err := a.FlushAcks(ctx); err != nil {
			t.Fatalf("flushing renewals: %v", err)
		}
	}
	close(stop)
	for _, o := range <-seenByB {
		if o < 2 {
			t.Errorf("b got offset %d while a renewed its lock", o)
		}
	}
	for _, r := range held {
		r.Ack(kgo.AckAccept)
	}
	if err := a.FlushAcks(ctx); err != nil {
		t.Fatalf("flushing accepts: %v", err)
	}
	select {
	case err := <-ackErrs:
		t.Fatalf("an acknowledgement failed: %v", err)
	default:
	}
}

func offsetsOf(rs []*kgo.Record) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.Offset
	}
	return out
}
