package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
)

// LeaveGroup v0–5 (kafka-go sends v0). v0–2 name one member, whose outcome
// is the top-level error; v3+ (KIP-345) name a batch by member id and/or
// group.instance.id, each with its own outcome, so an admin can remove
// static members. v5 adds a reason per member.
var leaveGroupHandler = handler{key: 13, minVersion: 0, maxVersion: 5, serve: serveLeaveGroup}

func serveLeaveGroup(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	lreq := coord.LeaveRequest{GroupID: req.Group}
	if req.Version < 3 {
		lreq.Members = []coord.LeavingMember{{MemberID: req.MemberID}}
	} else {
		lreq.Members = make([]coord.LeavingMember, 0, len(req.Members))
		for _, m := range req.Members {
			lreq.Members = append(lreq.Members, coord.LeavingMember{
				MemberID: m.MemberID, GroupInstanceID: groupString(m.InstanceID), Reason: groupString(m.Reason),
			})
		}
	}
	if err := b.authz(r).group(auth.OpRead, req.Group); err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	res, err := leaveGroupRun(ctx, b, lreq)
	switch {
	case errors.Is(err, coord.ErrUnknownMemberID):
		// The group does not exist: as in Kafka, every member is unknown
		// and the request as a whole did not fail.
		res.Members = make([]coord.LeftMember, len(lreq.Members))
		for i, m := range lreq.Members {
			res.Members[i] = coord.LeftMember{MemberID: m.MemberID, GroupInstanceID: m.GroupInstanceID, Err: err}
		}
	case err != nil:
		resp.ErrorCode = groupErrorCode(err)
		return resp, nil
	}
	if req.Version < 3 {
		resp.ErrorCode = groupErrorCode(res.Members[0].Err)
		return resp, nil
	}
	resp.Members = make([]kmsg.LeaveGroupResponseMember, 0, len(res.Members))
	for _, m := range res.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = m.MemberID, groupNullable(m.GroupInstanceID), groupErrorCode(m.Err)
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}

// leaveGroupRun calls the coordinator and checks it answered every member.
func leaveGroupRun(ctx context.Context, b *Broker, lreq coord.LeaveRequest) (coord.LeaveResult, error) {
	g, err := groups(b)
	if err != nil {
		return coord.LeaveResult{}, err
	}
	res, err := g.Leave(ctx, lreq)
	if err == nil && len(res.Members) != len(lreq.Members) {
		err = fmt.Errorf("coordinator answered %d of %d leaving members", len(res.Members), len(lreq.Members))
	}
	return res, err
}
