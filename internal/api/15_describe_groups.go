package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// DescribeGroups v0–5: each group's state, protocol and members, with their
// metadata and assignment once a protocol is chosen. A group that does not
// exist is described as Dead with no error, as Kafka does before v6. v3
// adds authorized operations (those the principal's ACLs allow),
// v4 group.instance.id.
var describeGroupsHandler = handler{key: 15, minVersion: 0, maxVersion: 5, serve: serveDescribeGroups}

func serveDescribeGroups(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.Groups = make([]kmsg.DescribeGroupsResponseGroup, 0, len(req.Groups))
	g, err := groups(b)
	if err != nil {
		for _, id := range req.Groups {
			out := kmsg.NewDescribeGroupsResponseGroup()
			out.Group, out.ErrorCode = id, groupErrorCode(err)
			resp.Groups = append(resp.Groups, out)
		}
		return resp, nil
	}
	// Groups the principal may not describe never reach the coordinator.
	z := b.authz(r)
	denied := make([]error, len(req.Groups))
	allowed := make([]string, 0, len(req.Groups))
	for i, id := range req.Groups {
		if denied[i] = z.group(auth.OpDescribe, id); denied[i] == nil {
			allowed = append(allowed, id)
		}
	}
	descs := g.DescribeGroups(ctx, allowed)
	if len(descs) != len(allowed) {
		return nil, fmt.Errorf("coordinator described %d of %d groups", len(descs), len(allowed))
	}
	for i, id := range req.Groups {
		out := kmsg.NewDescribeGroupsResponseGroup()
		out.Group = id
		if denied[i] != nil {
			out.ErrorCode = errorCode(denied[i])
			resp.Groups = append(resp.Groups, out)
			continue
		}
		d := descs[0]
		descs = descs[1:]
		if d.State == "Dead" && describeShareGroup(b, &out) {
			resp.Groups = append(resp.Groups, out)
			continue
		}
		if d.Err != nil {
			out.ErrorCode = groupErrorCode(d.Err)
			resp.Groups = append(resp.Groups, out)
			continue
		}
		out.State, out.ProtocolType, out.Protocol = d.State, d.ProtocolType, d.Protocol
		if req.IncludeAuthorizedOperations {
			out.AuthorizedOperations = z.operations(auth.ResourceGroup, id, groupAllOperations)
		}
		out.Members = make([]kmsg.DescribeGroupsResponseGroupMember, 0, len(d.Members))
		for _, m := range d.Members {
			rm := kmsg.NewDescribeGroupsResponseGroupMember()
			rm.MemberID, rm.InstanceID = m.MemberID, groupNullable(m.GroupInstanceID)
			rm.ClientID, rm.ClientHost = m.ClientID, m.ClientHost
			rm.ProtocolMetadata, rm.MemberAssignment = m.Metadata, m.Assignment
			out.Members = append(out.Members, rm)
		}
		resp.Groups = append(resp.Groups, out)
	}
	return resp, nil
}
