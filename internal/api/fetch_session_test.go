package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// dpSessionFetch is a fetch at v12 on a session.
func dpSessionFetch(t testing.TB, h *harness, id, epoch int32, forget []int32, parts ...dpFetchPart) *kmsg.FetchResponse {
	t.Helper()
	req := dpFetchRequest(12, 0, 0, parts...)
	req.SessionID, req.SessionEpoch = id, epoch
	if len(forget) > 0 {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.Partitions = "fs", forget
		req.ForgottenTopics = append(req.ForgottenTopics, ft)
	}
	return dpFetch(t, h, req)
}

// dpPartitionsIn lists the partitions a response carries.
func dpPartitionsIn(resp *kmsg.FetchResponse) []int32 {
	var ps []int32
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			ps = append(ps, p.Partition)
		}
	}
	return ps
}

func dpSamePartitions(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFetchSessionLifecycle(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "fs", 3)
	dpMustProduce(t, h, "fs", 0, dpBatch(t, "a", 2, dpBatchOptions{}))
	all := []dpFetchPart{{topic: "fs", partition: 0}, {topic: "fs", partition: 1}, {topic: "fs", partition: 2}}

	// 0/-1: a full fetch without a session.
	resp := dpSessionFetch(t, h, 0, -1, nil, all...)
	if resp.SessionID != 0 || !dpSamePartitions(dpPartitionsIn(resp), []int32{0, 1, 2}) || h.broker.fetchSessions.len() != 0 {
		t.Fatalf("sessionless: id %d, partitions %v", resp.SessionID, dpPartitionsIn(resp))
	}
	// 0/0: a full fetch creating a session.
	resp = dpSessionFetch(t, h, 0, 0, nil, all...)
	id := resp.SessionID
	if id == 0 || !dpSamePartitions(dpPartitionsIn(resp), []int32{0, 1, 2}) {
		t.Fatalf("create: id %d, partitions %v", id, dpPartitionsIn(resp))
	}
	// Epoch 1, nothing new (the client moved partition 0 past its data):
	// unchanged partitions are left out.
	resp = dpSessionFetch(t, h, id, 1, nil, dpFetchPart{topic: "fs", partition: 0, offset: 2})
	if resp.ErrorCode != 0 || resp.SessionID != id || len(dpPartitionsIn(resp)) != 0 {
		t.Fatalf("incremental, nothing new: %+v", resp)
	}
	// New data on partition 2: only it comes back.
	dpMustProduce(t, h, "fs", 2, dpBatch(t, "b", 3, dpBatchOptions{}))
	resp = dpSessionFetch(t, h, id, 2, nil)
	if !dpSamePartitions(dpPartitionsIn(resp), []int32{2}) || len(dpBatchHeaders(t, resp.Topics[0].Partitions[0].RecordBatches)) != 1 {
		t.Fatalf("incremental with data: %v", dpPartitionsIn(resp))
	}
	// Forget partition 2; new data there is then not sent, but partition
	// 1's is.
	resp = dpSessionFetch(t, h, id, 3, []int32{2}, dpFetchPart{topic: "fs", partition: 2, offset: 3})
	if len(dpPartitionsIn(resp)) != 0 {
		t.Fatalf("after forgetting (partition 2 was moved past its data first): %v", dpPartitionsIn(resp))
	}
	dpMustProduce(t, h, "fs", 2, dpBatch(t, "c", 1, dpBatchOptions{}))
	dpMustProduce(t, h, "fs", 1, dpBatch(t, "d", 1, dpBatchOptions{}))
	resp = dpSessionFetch(t, h, id, 4, nil)
	if !dpSamePartitions(dpPartitionsIn(resp), []int32{1}) {
		t.Fatalf("after forgetting 2: %v", dpPartitionsIn(resp))
	}
	// A wrong epoch, an unknown id.
	if resp = dpSessionFetch(t, h, id, 4, nil); resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code || resp.SessionID != 0 {
		t.Fatalf("replayed epoch: %+v", resp)
	}
	if resp = dpSessionFetch(t, h, id+1, 1, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown id: %+v", resp)
	}
	// The wrong epoch did not advance it: epoch 5 works, and an error on
	// a partition (moved out of range) is always sent.
	resp = dpSessionFetch(t, h, id, 5, nil, dpFetchPart{topic: "fs", partition: 0, offset: 999})
	if ps := resp.Topics; len(ps) != 1 || len(ps[0].Partitions) != 2 || ps[0].Partitions[0].ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("epoch 5: %+v", resp)
	}
	// id/-1 closes the session and answers as a full fetch.
	resp = dpSessionFetch(t, h, id, -1, nil, all...)
	if resp.SessionID != 0 || len(dpPartitionsIn(resp)) != 3 || h.broker.fetchSessions.len() != 0 {
		t.Fatalf("close: id %d, %d sessions", resp.SessionID, h.broker.fetchSessions.len())
	}
	if resp = dpSessionFetch(t, h, id, 6, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("closed session still answers: %+v", resp)
	}
	// A fetch before v7 knows nothing of sessions.
	req := dpFetchRequest(6, 0, 0, all...)
	if resp = dpFetch(t, h, req); resp.SessionID != 0 || len(dpPartitionsIn(resp)) != 3 || h.broker.fetchSessions.len() != 0 {
		t.Fatalf("v6: %+v", resp)
	}
}

// TestFetchSessionMovedHighWatermarkIsSent: a partition that returns no
// records (the response's byte budget went to another) is still sent when
// its high watermark moved, and left out once it has not.
func TestFetchSessionMovedHighWatermarkIsSent(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "fs", 2)
	req := dpFetchRequest(12, 0, 0, dpFetchPart{topic: "fs", partition: 0}, dpFetchPart{topic: "fs", partition: 1})
	req.SessionID, req.SessionEpoch, req.MaxBytes = 0, 0, 1
	id := dpFetch(t, h, req).SessionID
	dpMustProduce(t, h, "fs", 0, dpBatch(t, "x", 1, dpBatchOptions{}))
	dpMustProduce(t, h, "fs", 1, dpBatch(t, "y", 1, dpBatchOptions{}))
	req = dpFetchRequest(12, 0, 0)
	req.SessionID, req.SessionEpoch, req.MaxBytes = id, 1, 1
	resp := dpFetch(t, h, req)
	ps := resp.Topics[0].Partitions
	if len(ps) != 2 || len(ps[0].RecordBatches) == 0 || len(ps[1].RecordBatches) != 0 || ps[1].HighWatermark != 1 {
		t.Fatalf("moved hw: %+v", resp)
	}
	// Partition 0 returned records, so it now comes last, and partition 1
	// gets the byte budget first; partition 0 then has no records and
	// nothing moved since it was sent, so it is left out.
	req.SessionEpoch = 2
	resp = dpFetch(t, h, req)
	ps = resp.Topics[0].Partitions
	if len(ps) != 1 || ps[0].Partition != 1 || len(ps[0].RecordBatches) == 0 {
		t.Fatalf("order after data: %+v", resp)
	}
	// Partition 1, moved past its data, has nothing new: left out;
	// partition 0 (its fetch offset still 0) returns its batch again.
	req.SessionEpoch = 3
	req.Topics = dpFetchRequest(12, 0, 0, dpFetchPart{topic: "fs", partition: 1, offset: 1}).Topics
	if resp = dpFetch(t, h, req); !dpSamePartitions(dpPartitionsIn(resp), []int32{0}) {
		t.Fatalf("unchanged left out: %v", dpPartitionsIn(resp))
	}
}

// TestFetchSessionEviction: a full cache evicts the smallest session for
// one at least as large, and otherwise answers without a session (never an
// error).
func TestFetchSessionEviction(t *testing.T) {
	h := newHarness(t, Config{MaxIncrementalFetchSessionCacheSlots: 2})
	dpCreateTopic(t, h, "fs", 3)
	part := func(p int32) dpFetchPart { return dpFetchPart{topic: "fs", partition: p} }
	small := dpSessionFetch(t, h, 0, 0, nil, part(0)).SessionID
	big := dpSessionFetch(t, h, 0, 0, nil, part(0), part(1)).SessionID
	if small == 0 || big == 0 || small == big {
		t.Fatalf("sessions %d and %d", small, big)
	}
	// A session of two evicts the one of one.
	other := dpSessionFetch(t, h, 0, 0, nil, part(1), part(2)).SessionID
	if other == 0 || h.broker.fetchSessions.len() != 2 {
		t.Fatalf("third session %d, %d cached", other, h.broker.fetchSessions.len())
	}
	if resp := dpSessionFetch(t, h, small, 1, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("evicted session: %+v", resp)
	}
	// A session of one finds no room: no session, data all the same.
	resp := dpSessionFetch(t, h, 0, 0, nil, part(2))
	if resp.ErrorCode != 0 || resp.SessionID != 0 || len(dpPartitionsIn(resp)) != 1 {
		t.Fatalf("no room: %+v", resp)
	}
	if resp := dpSessionFetch(t, h, big, 1, nil); resp.ErrorCode != 0 || resp.SessionID != big {
		t.Fatalf("big session lost: %+v", resp)
	}
}

// TestFetchSessionStaleIsEvicted: a session unused for two minutes gives
// way to any new one.
func TestFetchSessionStaleIsEvicted(t *testing.T) {
	c := newFetchSessionCache(1)
	reads := func(n int) []*fetchRead {
		var rs []*fetchRead
		for i := range n {
			rs = append(rs, &fetchRead{topic: "t", partition: int32(i)})
		}
		return rs
	}
	first := c.create(reads(5), 1000)
	if first == 0 || c.create(reads(1), 1000+fetchSessionEvictionMs) != 0 {
		t.Fatal("a small session evicted a larger fresh one")
	}
	if second := c.create(reads(1), 1001+fetchSessionEvictionMs); second == 0 || c.len() != 1 || c.partitions != 1 {
		t.Fatalf("stale session kept: %d sessions, %d partitions", c.len(), c.partitions)
	}
}
