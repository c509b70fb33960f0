package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupDescribeShareGroup: a share group (a member joined with raw
// ShareGroupHeartbeat) is described with type share, the simple assignor,
// its epochs and its member's assignment, and listed by --all.
func TestGroupDescribeShareGroup(t *testing.T) {
	addr := groupBroker(t)
	createTopic(t, addr, "tasks", 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.GroupID, req.MemberID, req.SubscribedTopicNames = "crunchers", "member-1", []string{"tasks"}
	for {
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err == nil {
			break
		}
		if !kerr.IsRetriable(err) || ctx.Err() != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ds := describeGroupsJSON(t, addr, exitOK, "--all")
	if len(ds) != 1 {
		t.Fatalf("describe --all = %+v", ds)
	}
	d := ds[0]
	if d.Group != "crunchers" || d.ProtocolType != "share" || d.GroupType != "share" || d.Assignor != "simple" || d.GroupEpoch != 1 ||
		d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != "member-1" ||
		d.Members[0].MemberEpoch == nil || *d.Members[0].MemberEpoch != 1 || len(d.Members[0].Assigned["tasks"]) != 2 {
		t.Fatalf("describe = %+v", d)
	}
	out, stderr, code := runCLI(t, "group", "describe", "crunchers", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, "share group (KIP-932), assignor simple, group epoch 1") || !strings.Contains(out, "member-1  1 ") ||
		!strings.Contains(out, "tasks:0,1") {
		t.Errorf("describe crunchers:\n%s", out)
	}
}

// shareTestMember is a share group member on the raw protocol, so the
// test decides exactly what it acquires and acknowledges.
type shareTestMember struct {
	t           *testing.T
	cl          *kgo.Client
	group, id   string
	epoch, sess int32
	topicID     [16]byte
	// acquiredFirst and acquiredLast bound what the last fetch acquired.
	acquiredFirst, acquiredLast int64
}

func (m *shareTestMember) heartbeat(ctx context.Context, topics []string) {
	m.t.Helper()
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.GroupID, req.MemberID, req.MemberEpoch, req.SubscribedTopicNames = m.group, m.id, m.epoch, topics
	for {
		resp, err := req.RequestWith(ctx, m.cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err == nil {
			m.epoch = resp.MemberEpoch
			if resp.Assignment != nil && len(resp.Assignment.TopicPartitions) > 0 {
				m.topicID = resp.Assignment.TopicPartitions[0].TopicID
			}
			return
		}
		if !kerr.IsRetriable(err) || ctx.Err() != nil {
			m.t.Fatalf("heartbeat of %s: %v", m.id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fetch accepts offsets [acceptFrom, acceptTo] (none if acceptTo < 0) of
// partition 0 and acquires what comes next.
func (m *shareTestMember) fetch(ctx context.Context, acceptFrom, acceptTo int64) {
	m.t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &m.group, &m.id, m.sess
	req.MaxWaitMillis, req.MaxBytes, req.MaxRecords = 1000, 1<<20, 100
	rp := kmsg.NewShareFetchRequestTopicPartition()
	if acceptTo >= 0 {
		rp.AcknowledgementBatches = []kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{{FirstOffset: acceptFrom, LastOffset: acceptTo, AcknowledgeTypes: []int8{1}}}
	}
	req.Topics = []kmsg.ShareFetchRequestTopic{{TopicID: m.topicID, Partitions: []kmsg.ShareFetchRequestTopicPartition{rp}}}
	resp, err := req.RequestWith(ctx, m.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		m.t.Fatalf("share fetch of %s: %v", m.id, err)
	}
	m.sess++
	m.acquiredFirst, m.acquiredLast = -1, -1
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := errors.Join(kerr.ErrorForCode(p.ErrorCode), kerr.ErrorForCode(p.AcknowledgeErrorCode)); err != nil {
				m.t.Fatalf("share fetch of %s: %v", m.id, err)
			}
			for _, r := range p.AcquiredRecords {
				if m.acquiredFirst < 0 {
					m.acquiredFirst = r.FirstOffset
				}
				m.acquiredLast = r.LastOffset
			}
		}
	}
}

// leave closes the share session and leaves the group.
func (m *shareTestMember) leave(ctx context.Context) {
	m.t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &m.group, &m.id, -1
	if _, err := req.RequestWith(ctx, m.cl); err != nil {
		m.t.Fatal(err)
	}
	m.epoch = -1
	m.heartbeat(ctx, nil)
	m.epoch, m.sess = 0, 0
}

// shareStart is group describe --json's start offset and lag of
// tasks/0, or -1, -1 when it lists no partition.
func shareStart(t *testing.T, addr, group string) (start, lag int64) {
	t.Helper()
	out, stderr, code := runCLI(t, "group", "describe", group, "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var d groupDescription
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Partitions) == 0 {
		return -1, -1
	}
	p := d.Partitions[0]
	if p.Topic != "tasks" || p.Partition != 0 || p.StartOffset == nil || p.Committed != -1 || p.Lag != d.TotalLag {
		t.Fatalf("describe --json partitions = %+v, total lag %d", d.Partitions, d.TotalLag)
	}
	return *p.StartOffset, p.Lag
}

// TestGroupShareOffsets: a share group's start offset and lag in group
// describe; reset-offsets and offset-delete on it, refused with a
// readable message while it has a member, and each moving what the next
// consumer of the group gets.
func TestGroupShareOffsets(t *testing.T) {
	addr := startBroker(t, "group.initial.rebalance.delay.ms=0", "share.auto.offset.reset=earliest")
	createTopic(t, addr, "tasks", 1)
	produceAt(t, addr, "tasks", 0, 10)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := &shareTestMember{t: t, cl: cl, group: "crunchers", id: "member-1"}
	m.heartbeat(ctx, []string{"tasks"})
	m.fetch(ctx, 0, -1)
	m.fetch(ctx, 0, 3)
	if start, lag := shareStart(t, addr, "crunchers"); start != 4 || lag != 6 {
		t.Fatalf("start offset %d lag %d, want 4 and 6", start, lag)
	}
	out, stderr, code := runCLI(t, "group", "describe", "crunchers", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, "START-OFFSET") || !strings.Contains(out, "Total lag:    6") {
		t.Errorf("describe crunchers:\n%s", out)
	}

	_, stderr, code = runCLI(t, "group", "reset-offsets", "crunchers", "--topic", "tasks", "--to-earliest", "--brokers", addr)
	if code != exitError || !strings.Contains(stderr, "stop its consumers first") {
		t.Errorf("reset with a member: exit %d, stderr %q", code, stderr)
	}
	// offset-delete asks the broker at once: its NON_EMPTY_GROUP is worded.
	_, stderr, code = runCLI(t, "group", "offset-delete", "crunchers", "--topic", "tasks", "--brokers", addr)
	if code != exitError || !strings.Contains(stderr, `share group "crunchers" has members: stop its consumers first`) ||
		!strings.Contains(stderr, "NON_EMPTY_GROUP") {
		t.Errorf("offset-delete with a member: exit %d, stderr %q", code, stderr)
	}
	m.leave(ctx)

	out, stderr, code = runCLI(t, "group", "reset-offsets", "crunchers", "--topic", "tasks", "--to-offset", "2", "--dry-run", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, "tasks  0          4           2") {
		t.Errorf("reset --dry-run:\n%s", out)
	}
	if start, _ := shareStart(t, addr, "crunchers"); start != 4 {
		t.Fatalf("after the dry run start offset %d, want 4", start)
	}
	_, stderr, code = runCLI(t, "group", "reset-offsets", "crunchers", "--all-topics", "--to-offset", "2", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if start, lag := shareStart(t, addr, "crunchers"); start != 2 || lag != 8 {
		t.Fatalf("after reset start offset %d lag %d, want 2 and 8", start, lag)
	}
	m.heartbeat(ctx, []string{"tasks"})
	m.fetch(ctx, 0, -1)
	if m.acquiredFirst != 2 || m.acquiredLast != 9 {
		t.Fatalf("after reset acquired %d-%d, want 2-9", m.acquiredFirst, m.acquiredLast)
	}
	m.fetch(ctx, 2, 9)
	m.leave(ctx)
	_, stderr, code = runCLI(t, "group", "reset-offsets", "crunchers", "--topic", "tasks", "--shift-by", "-3", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if start, _ := shareStart(t, addr, "crunchers"); start != 7 {
		t.Fatalf("after --shift-by -3 start offset %d, want 7", start)
	}
	// --to-group reads a share group's start offsets: a consumer group
	// can be started where the share group stands.
	_, stderr, code = runCLI(t, "group", "reset-offsets", "billing", "--all-topics", "--to-group", "crunchers", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if got := committedOffset(t, addr, "billing", "tasks"); got != 7 {
		t.Fatalf("consumer group billing copied from crunchers: committed %d, want 7", got)
	}

	_, stderr, code = runCLI(t, "group", "offset-delete", "crunchers", "--topic", "tasks:0", "--brokers", addr)
	if code != exitError || !strings.Contains(stderr, "deleted for whole topics") {
		t.Errorf("offset-delete of a partition: exit %d, stderr %q", code, stderr)
	}
	out, stderr, code = runCLI(t, "group", "offset-delete", "crunchers", "--topic", "tasks", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var deleted struct {
		Deleted []groupOffsetDeleted `json:"deleted"`
	}
	if err := json.Unmarshal([]byte(out), &deleted); err != nil || len(deleted.Deleted) != 1 || deleted.Deleted[0] != (groupOffsetDeleted{"tasks", 0}) {
		t.Fatalf("offset-delete --json = %s (%v)", out, err)
	}
	if start, _ := shareStart(t, addr, "crunchers"); start != -1 {
		t.Fatalf("after offset-delete start offset %d, want none", start)
	}
	createTopic(t, addr, "other", 1)
	_, stderr, code = runCLI(t, "group", "offset-delete", "crunchers", "--topic", "other", "--brokers", addr)
	if code != exitError || !strings.Contains(stderr, `share group "crunchers" has no offsets on topic "other"`) ||
		!strings.Contains(stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("offset-delete of a topic the group never read: exit %d, stderr %q", code, stderr)
	}
}
