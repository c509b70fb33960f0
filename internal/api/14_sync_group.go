package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
)

// SyncGroup v0–5 (kafka-go sends v0). The leader sends the assignment it
// computed, passed through untouched (so eager and cooperative strategies
// alike work); every member blocks until it is known and durable, then
// gets its own. v3 adds group.instance.id, v5 the protocol type and name,
// which Kafka requires from v5 (INCONSISTENT_GROUP_PROTOCOL without them).
var syncGroupHandler = handler{key: 14, minVersion: 0, maxVersion: 5, serve: serveSyncGroup}

func serveSyncGroup(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.SyncGroupRequest)
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	if err := b.authz(r).group(auth.OpRead, req.Group); err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	g, err := groups(b)
	if err != nil {
		resp.ErrorCode = groupErrorCode(err)
		return resp, nil
	}
	if req.Version >= 5 && (req.ProtocolType == nil || req.Protocol == nil) {
		resp.ErrorCode = groupErrorCode(fmt.Errorf("%w: SyncGroup v%d needs the protocol type and name", coord.ErrInconsistentGroupProtocol, req.Version))
		return resp, nil
	}
	sreq := coord.SyncRequest{
		GroupID:         req.Group,
		GenerationID:    req.Generation,
		MemberID:        req.MemberID,
		GroupInstanceID: groupString(req.InstanceID),
		ProtocolType:    groupString(req.ProtocolType),
		ProtocolName:    groupString(req.Protocol),
		Assignments:     make([]coord.MemberAssignment, 0, len(req.GroupAssignment)),
	}
	assignments := make([][]byte, len(req.GroupAssignment))
	for i, a := range req.GroupAssignment {
		assignments[i] = a.MemberAssignment
	}
	assignments = groupDetach(assignments)
	for i, a := range req.GroupAssignment {
		sreq.Assignments = append(sreq.Assignments, coord.MemberAssignment{MemberID: a.MemberID, Assignment: assignments[i]})
	}
	res, err := g.Sync(ctx, sreq)
	if err != nil {
		resp.ErrorCode = groupErrorCode(err)
		return resp, nil
	}
	resp.ProtocolType, resp.Protocol = &res.ProtocolType, &res.ProtocolName
	resp.MemberAssignment = res.Assignment
	return resp, nil
}
