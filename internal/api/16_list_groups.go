package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups v0–4: the groups this broker coordinates. v4 filters by state
// (case-insensitive, KIP-518) and returns each group's state. While a shard
// of __consumer_offsets is still loading, the groups of the others come
// with COORDINATOR_LOAD_IN_PROGRESS, as in Kafka. v5's type filter (KIP-848)
// is not advertised: every group here is a classic group.
var listGroupsHandler = handler{key: 16, minVersion: 0, maxVersion: 4, serve: serveListGroups}

func serveListGroups(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	g, err := groups(b)
	if err != nil {
		resp.ErrorCode = groupErrorCode(err)
		return resp, nil
	}
	var states []string
	if req.Version >= 4 {
		states = req.StatesFilter
	}
	listed, err := g.ListGroups(ctx, states)
	resp.ErrorCode = groupErrorCode(err)
	resp.Groups = make([]kmsg.ListGroupsResponseGroup, 0, len(listed))
	for _, l := range listed {
		out := kmsg.NewListGroupsResponseGroup()
		out.Group, out.ProtocolType, out.GroupState = l.GroupID, l.ProtocolType, l.State
		resp.Groups = append(resp.Groups, out)
	}
	resp.Groups = appendShareGroups(b, states, resp.Groups)
	return resp, nil
}
