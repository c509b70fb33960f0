package api

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// ListGroups v0–5: the groups this broker coordinates. v4 filters by state
// (case-insensitive, KIP-518) and returns each group's state. v5 (KIP-848)
// returns each group's type, "classic" or "consumer", and filters by type
// (case-insensitive, as Kafka). While a shard of __consumer_offsets is still
// loading, the groups of the others come with COORDINATOR_LOAD_IN_PROGRESS,
// as in Kafka.
var listGroupsHandler = handler{key: 16, minVersion: 0, maxVersion: 5, serve: serveListGroups}

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
	// DESCRIBE on the cluster lists every group; without it, only the
	// groups the principal may describe are listed, as in Kafka.
	z := b.authz(r)
	all := z.cluster(auth.OpDescribe) == nil
	for _, l := range listed {
		if !all && z.group(auth.OpDescribe, l.GroupID) != nil {
			continue
		}
		if req.Version >= 5 && len(req.TypesFilter) > 0 && !slices.ContainsFunc(req.TypesFilter, func(t string) bool { return strings.EqualFold(t, l.Type) }) {
			continue
		}
		out := kmsg.NewListGroupsResponseGroup()
		out.Group, out.ProtocolType, out.GroupState, out.GroupType = l.GroupID, l.ProtocolType, l.State, l.Type
		resp.Groups = append(resp.Groups, out)
	}
	var types []string
	if req.Version >= 5 {
		types = req.TypesFilter
	}
	resp.Groups = appendShareGroups(b, states, types, resp.Groups)
	return resp, nil
}
