package api

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupList lists groups at version with a state filter (v4+) and returns
// "group/state/type" strings, sorted.
func groupList(t *testing.T, h *harness, version int16, states ...string) []string {
	t.Helper()
	req := kmsg.NewPtrListGroupsRequest()
	req.Version, req.StatesFilter = version, states
	resp := groupMust[*kmsg.ListGroupsResponse](t, h, req)
	groupWantCode(t, "list groups", resp.ErrorCode, nil)
	var out []string
	for _, g := range resp.Groups {
		out = append(out, g.Group+"/"+g.GroupState+"/"+g.ProtocolType)
	}
	slices.Sort(out)
	return out
}

func TestListGroupsWithStateFilter(t *testing.T) {
	h := newGroupHarness(t, groupTestConfig())
	groupCreateTopic(t, h, "t", 1)
	for _, g := range []string{"l-stable", "l-empty", "l-preparing"} {
		groupWaitCoordinator(t, h, g)
	}
	j := groupJoinNew(t, h, 5, "l-stable")
	groupMust[*kmsg.SyncGroupResponse](t, h, groupSyncRequest(4, "l-stable", j.Generation, j.MemberID, nil))
	simple := groupMust[*kmsg.OffsetCommitResponse](t, h, groupCommitRequest(2, "l-empty", -1, "", "t", 3))
	groupWantCode(t, "simple commit", simple.Topics[0].Partitions[0].ErrorCode, nil)

	want := []string{"l-empty/Empty/", "l-stable/Stable/consumer"}
	if got := groupList(t, h, 4); !slices.Equal(got, want) {
		t.Fatalf("v4 list %v, want %v", got, want)
	}
	if got := groupList(t, h, 4, "stable"); !slices.Equal(got, want[1:]) {
		t.Fatalf("v4 list of stable groups %v", got)
	}
	if got := groupList(t, h, 4, "Empty", "PreparingRebalance"); !slices.Equal(got, want[:1]) {
		t.Fatalf("v4 list of empty groups %v", got)
	}
	if got := groupList(t, h, 4, "Dead"); len(got) != 0 {
		t.Fatalf("v4 list of dead groups %v", got)
	}
	// Before v4 there is no state to filter on or report.
	if got := groupList(t, h, 0); !slices.Equal(got, []string{"l-empty//", "l-stable//consumer"}) {
		t.Fatalf("v0 list %v", got)
	}
}

func TestListGroupsWithoutCoordinator(t *testing.T) {
	h := newFakeGroupHarness(t, nil)
	req := kmsg.NewPtrListGroupsRequest()
	req.Version = 3
	groupWantCode(t, "no coordinator", groupMust[*kmsg.ListGroupsResponse](t, h, req).ErrorCode, kerr.CoordinatorNotAvailable)
}
