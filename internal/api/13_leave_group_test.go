package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
)

// A leave for a group that does not exist: v0–2 answer the member's
// UNKNOWN_MEMBER_ID at the top, v3+ per member with no top-level error, as
// Kafka does.
func TestLeaveGroupUnknownGroupPerVersion(t *testing.T) {
	f := &fakeGroups{err: coord.ErrUnknownMemberID}
	h := newFakeGroupHarness(t, f)
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version, req.Group, req.MemberID = 0, "g", "m"
	groupWantCode(t, "v0", groupMust[*kmsg.LeaveGroupResponse](t, h, req).ErrorCode, kerr.UnknownMemberID)
	if got := f.leaves[0].Members; len(got) != 1 || got[0].MemberID != "m" {
		t.Fatalf("v0 leave as %+v", got)
	}

	req = kmsg.NewPtrLeaveGroupRequest()
	req.Version, req.Group = 3, "g"
	req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "a"}, {InstanceID: kmsg.StringPtr("static")}}
	resp := groupMust[*kmsg.LeaveGroupResponse](t, h, req)
	groupWantCode(t, "v3 top level", resp.ErrorCode, nil)
	if len(resp.Members) != 2 || resp.Members[1].InstanceID == nil || *resp.Members[1].InstanceID != "static" {
		t.Fatalf("v3 members %+v", resp.Members)
	}
	for _, m := range resp.Members {
		groupWantCode(t, "v3 member", m.ErrorCode, kerr.UnknownMemberID)
	}

	// Other group-level errors stay at the top.
	f.err = coord.ErrCoordinatorLoadInProgress
	resp = groupMust[*kmsg.LeaveGroupResponse](t, h, req)
	groupWantCode(t, "v3 loading", resp.ErrorCode, kerr.CoordinatorLoadInProgress)
	if len(resp.Members) != 0 {
		t.Fatalf("members with a group-level error %+v", resp.Members)
	}
}
