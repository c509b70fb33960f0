package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups v0–5: each group's state, protocol and members, with their
// metadata and assignment once a protocol is chosen. A group that does not
// exist is described as Dead with no error, as Kafka does before v6. v3
// adds authorized operations (every group operation, as there are no ACLs),
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
	descs := g.DescribeGroups(ctx, req.Groups)
	if len(descs) != len(req.Groups) {
		return nil, fmt.Errorf("coordinator described %d of %d groups", len(descs), len(req.Groups))
	}
	for _, d := range descs {
		out := kmsg.NewDescribeGroupsResponseGroup()
		out.Group = d.GroupID
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
			out.AuthorizedOperations = groupAllOperations
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
