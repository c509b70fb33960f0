package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
)

// Commit at v2 (kafka-go) and read back at v2, v7 (all partitions) and v8+
// (several groups in one request).
func TestOffsetFetchAfterCommitOldAndMultiGroup(t *testing.T) {
	h := newGroupHarness(t, groupTestConfig())
	groupCreateTopic(t, h, "a", 2)
	groupCreateTopic(t, h, "b", 1)
	for _, g := range []string{"f1", "f2", "f3"} {
		groupWaitCoordinator(t, h, g)
	}
	for _, c := range []*kmsg.OffsetCommitRequest{
		groupCommitRequest(2, "f1", -1, "", "a", 10, 11),
		groupCommitRequest(2, "f1", -1, "", "b", 12),
		groupCommitRequest(9, "f2", -1, "", "a", 20),
	} {
		for _, code := range groupCommitCodes(groupMust[*kmsg.OffsetCommitResponse](t, h, c)) {
			groupWantCode(t, "commit", code, nil)
		}
	}

	// v2 named partitions, one of them never committed.
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group = 2, "f1"
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "a", Partitions: []int32{1, 0}}, {Topic: "b", Partitions: []int32{0, 5}}}
	resp := groupMust[*kmsg.OffsetFetchResponse](t, h, req)
	groupWantCode(t, "v2 fetch", resp.ErrorCode, nil)
	got := map[string]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			got[t.Topic+"-"+string(rune('0'+p.Partition))] = p.Offset
		}
	}
	want := map[string]int64{"a-0": 10, "a-1": 11, "b-0": 12, "b-5": -1}
	if len(got) != len(want) {
		t.Fatalf("v2 fetch %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Fatalf("v2 fetch %v, want %v", got, want)
		}
	}

	// v7 all partitions (null topics).
	req = kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group, req.RequireStable = 7, "f1", true
	resp = groupMust[*kmsg.OffsetFetchResponse](t, h, req)
	if n := len(resp.Topics); n != 2 || len(resp.Topics[0].Partitions)+len(resp.Topics[1].Partitions) != 3 {
		t.Fatalf("v7 all partitions %+v", resp.Topics)
	}

	// v8 and v9: three groups, one named, one all, one unknown.
	for _, v := range []int16{8, 9} {
		req = kmsg.NewPtrOffsetFetchRequest()
		req.Version = v
		req.Groups = []kmsg.OffsetFetchRequestGroup{
			{Group: "f1", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "b", Partitions: []int32{0}}}},
			{Group: "f2"},
			{Group: "f3", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "a", Partitions: []int32{0}}}},
		}
		resp = groupMust[*kmsg.OffsetFetchResponse](t, h, req)
		if len(resp.Groups) != 3 {
			t.Fatalf("v%d: %d groups", v, len(resp.Groups))
		}
		g1, g2, g3 := resp.Groups[0], resp.Groups[1], resp.Groups[2]
		if g1.Group != "f1" || g1.ErrorCode != 0 || g1.Topics[0].Partitions[0].Offset != 12 {
			t.Fatalf("v%d f1 %+v", v, g1)
		}
		if g2.Group != "f2" || len(g2.Topics) != 1 || g2.Topics[0].Topic != "a" || g2.Topics[0].Partitions[0].Offset != 20 {
			t.Fatalf("v%d f2 %+v", v, g2)
		}
		// A group with no commits: -1, no error (docs/broker.md, wire compatibility).
		p := g3.Topics[0].Partitions[0]
		if g3.ErrorCode != 0 || p.Offset != -1 || p.ErrorCode != 0 || p.LeaderEpoch != -1 || p.Metadata == nil || *p.Metadata != "" {
			t.Fatalf("v%d f3 %+v", v, g3)
		}
	}
}

// A group-level error sits where each version has room for it: on every
// requested partition before v2, top-level v2–7, per group v8+.
func TestOffsetFetchGroupErrorPerVersion(t *testing.T) {
	f := &fakeGroups{err: coord.ErrCoordinatorLoadInProgress}
	h := newFakeGroupHarness(t, f)
	for _, v := range []int16{0, 1} {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group = v, "g"
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "a", Partitions: []int32{0, 1}}}
		resp := groupMust[*kmsg.OffsetFetchResponse](t, h, req)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
			t.Fatalf("v%d topics %+v", v, resp.Topics)
		}
		for _, p := range resp.Topics[0].Partitions {
			groupWantCode(t, "v0-1 partition", p.ErrorCode, kerr.CoordinatorLoadInProgress)
			if p.Offset != -1 {
				t.Fatalf("v%d offset %d with an error", v, p.Offset)
			}
		}
	}
	for _, v := range []int16{2, 7} {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group = v, "g"
		resp := groupMust[*kmsg.OffsetFetchResponse](t, h, req)
		groupWantCode(t, "v2-7 top level", resp.ErrorCode, kerr.CoordinatorLoadInProgress)
		if len(resp.Topics) != 0 {
			t.Fatalf("v%d topics with an error %+v", v, resp.Topics)
		}
	}
	f.err = nil
	f.fetchRes = func(req coord.FetchRequest) (coord.FetchResult, error) {
		if req.GroupID == "bad" {
			return coord.FetchResult{}, coord.ErrNotCoordinator
		}
		return coord.FetchResult{}, nil
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "good"}, {Group: "bad"}}
	resp := groupMust[*kmsg.OffsetFetchResponse](t, h, req)
	groupWantCode(t, "good group", resp.Groups[0].ErrorCode, nil)
	groupWantCode(t, "bad group", resp.Groups[1].ErrorCode, kerr.NotCoordinator)
	// Null topics reach the coordinator as nil (all partitions), empty
	// topics as empty.
	if f.fetches[len(f.fetches)-2].Topics != nil {
		t.Fatal("null topics became a list")
	}
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "good", Topics: []kmsg.OffsetFetchRequestGroupTopic{}}}
	groupMust[*kmsg.OffsetFetchResponse](t, h, req)
	if got := f.fetches[len(f.fetches)-1].Topics; got == nil {
		t.Fatal("empty topics became null (all partitions)")
	}
}
