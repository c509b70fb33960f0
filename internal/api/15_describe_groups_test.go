package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
)

// groupDescribe describes groups at version.
func groupDescribe(t *testing.T, h *harness, version int16, groups ...string) []kmsg.DescribeGroupsResponseGroup {
	t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version, req.Groups = version, groups
	resp := groupMust[*kmsg.DescribeGroupsResponse](t, h, req)
	if len(resp.Groups) != len(groups) {
		t.Fatalf("described %d of %d groups", len(resp.Groups), len(groups))
	}
	return resp.Groups
}

func TestDescribeGroupsStableEmptyAndUnknown(t *testing.T) {
	h := newGroupHarness(t, groupTestConfig())
	groupCreateTopic(t, h, "t", 1)
	groupWaitCoordinator(t, h, "stable")
	groupWaitCoordinator(t, h, "committed")
	j := groupJoinNew(t, h, 5, "stable")
	s := groupMust[*kmsg.SyncGroupResponse](t, h, groupSyncRequest(4, "stable", j.Generation, j.MemberID, map[string]string{j.MemberID: "asg"}))
	groupWantCode(t, "sync", s.ErrorCode, nil)
	simple := groupMust[*kmsg.OffsetCommitResponse](t, h, groupCommitRequest(2, "committed", -1, "", "t", 3))
	groupWantCode(t, "simple commit", simple.Topics[0].Partitions[0].ErrorCode, nil)

	for _, v := range []int16{0, 3, 4, 5} {
		ds := groupDescribe(t, h, v, "stable", "committed", "nobody")
		st := ds[0]
		groupWantCode(t, "stable", st.ErrorCode, nil)
		if st.Group != "stable" || st.State != coord.StateStable || st.ProtocolType != "consumer" || st.Protocol != "range" || len(st.Members) != 1 {
			t.Fatalf("v%d stable group %+v", v, st)
		}
		m := st.Members[0]
		if m.MemberID != j.MemberID || m.ClientID != "client" || m.ClientHost != "/127.0.0.1" ||
			string(m.ProtocolMetadata) != "meta" || string(m.MemberAssignment) != "asg" || m.InstanceID != nil {
			t.Fatalf("v%d member %+v", v, m)
		}
		if v >= 3 && st.AuthorizedOperations != groupNoAuthorizedOperations {
			t.Fatalf("v%d authorized operations %d without asking", v, st.AuthorizedOperations)
		}
		if c := ds[1]; c.ErrorCode != 0 || c.State != coord.StateEmpty || len(c.Members) != 0 {
			t.Fatalf("v%d group with only commits %+v", v, c)
		}
		// An unknown group is Dead with no error, as Kafka describes it.
		if u := ds[2]; u.ErrorCode != 0 || u.Group != "nobody" || u.State != coord.StateDead || len(u.Members) != 0 {
			t.Fatalf("v%d unknown group %+v", v, u)
		}
	}
	dreq := kmsg.NewPtrDescribeGroupsRequest()
	dreq.Version, dreq.Groups, dreq.IncludeAuthorizedOperations = 5, []string{"stable"}, true
	if ops := groupMust[*kmsg.DescribeGroupsResponse](t, h, dreq).Groups[0].AuthorizedOperations; ops != groupAllOperations {
		t.Fatalf("authorized operations %b", ops)
	}
}

func TestDescribeGroupsWithoutCoordinator(t *testing.T) {
	h := newFakeGroupHarness(t, nil)
	d := groupDescribe(t, h, 1, "a", "b")
	for _, g := range d {
		groupWantCode(t, "group "+g.Group, g.ErrorCode, kerr.CoordinatorNotAvailable)
	}
}
