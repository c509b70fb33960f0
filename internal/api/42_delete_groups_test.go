package api

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDeleteGroupsEmptyUnknownAndNonEmpty(t *testing.T) {
	h := newGroupHarness(t, groupTestConfig())
	groupCreateTopic(t, h, "t", 1)
	for _, g := range []string{"d-busy", "d-idle"} {
		groupWaitCoordinator(t, h, g)
	}
	groupJoinNew(t, h, 4, "d-busy")
	commit := groupMust[*kmsg.OffsetCommitResponse](t, h, groupCommitRequest(3, "d-idle", -1, "", "t", 9))
	groupWantCode(t, "commit", commit.Topics[0].Partitions[0].ErrorCode, nil)

	for _, v := range []int16{0, 2} {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version, req.Groups = v, []string{"d-busy", "d-idle", "d-none", "d-idle"}
		resp := groupMust[*kmsg.DeleteGroupsResponse](t, h, req)
		got := map[string]int16{}
		for _, g := range resp.Groups {
			got[g.Group] = g.ErrorCode
		}
		if len(resp.Groups) != 3 {
			t.Fatalf("v%d: %d results for 3 distinct groups", v, len(resp.Groups))
		}
		groupWantCode(t, "busy group", got["d-busy"], kerr.NonEmptyGroup)
		groupWantCode(t, "unknown group", got["d-none"], kerr.GroupIDNotFound)
		if v == 0 {
			groupWantCode(t, "idle group", got["d-idle"], nil)
		} else {
			groupWantCode(t, "deleted group", got["d-idle"], kerr.GroupIDNotFound)
		}
	}
	// Its offsets went with it.
	freq := kmsg.NewPtrOffsetFetchRequest()
	freq.Version, freq.Group = 1, "d-idle"
	freq.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	if p := groupMust[*kmsg.OffsetFetchResponse](t, h, freq).Topics[0].Partitions[0]; p.Offset != -1 || p.ErrorCode != 0 {
		t.Fatalf("offset of a deleted group %+v", p)
	}
	if got := groupList(t, h, 4); !slices.Equal(got, []string{"d-busy/CompletingRebalance/consumer"}) {
		t.Fatalf("groups after delete %v", got)
	}
}

func TestDeleteGroupsDistinct(t *testing.T) {
	if got := deleteGroupsDistinct([]string{"a", "b", "a", "c", "b"}); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("distinct %v", got)
	}
}
