package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// DeleteGroups v0–2: delete empty groups and their committed offsets. A
// group named twice is deleted and answered once, as in Kafka. Each group
// gets its own outcome: GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP,
// INVALID_GROUP_ID or a coordinator error.
var deleteGroupsHandler = handler{key: 42, minVersion: 0, maxVersion: 2, serve: serveDeleteGroups}

func serveDeleteGroups(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	ids := deleteGroupsDistinct(req.Groups)
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, 0, len(ids))
	g, err := groups(b)
	if err != nil {
		for _, id := range ids {
			out := kmsg.NewDeleteGroupsResponseGroup()
			out.Group, out.ErrorCode = id, groupErrorCode(err)
			resp.Groups = append(resp.Groups, out)
		}
		return resp, nil
	}
	// Only the groups the principal may delete reach the coordinator;
	// the others are GROUP_AUTHORIZATION_FAILED, in request order.
	z := b.authz(r)
	denied := make([]error, len(ids))
	allowed := make([]string, 0, len(ids))
	for i, id := range ids {
		if denied[i] = z.group(auth.OpDelete, id); denied[i] == nil {
			allowed = append(allowed, id)
		}
	}
	results := g.DeleteGroups(ctx, allowed)
	if len(results) != len(allowed) {
		return nil, fmt.Errorf("coordinator answered %d of %d deleted groups", len(results), len(allowed))
	}
	for i, id := range ids {
		if denied[i] != nil {
			out := kmsg.NewDeleteGroupsResponseGroup()
			out.Group, out.ErrorCode = id, errorCode(denied[i])
			resp.Groups = append(resp.Groups, out)
			continue
		}
		res := results[0]
		results = results[1:]
		out := kmsg.NewDeleteGroupsResponseGroup()
		out.Group, out.ErrorCode = res.GroupID, groupErrorCode(res.Err)
		deleteShareGroup(ctx, b, &out)
		resp.Groups = append(resp.Groups, out)
	}
	return resp, nil
}

// deleteGroupsDistinct is ids without repeats, in first-seen order.
func deleteGroupsDistinct(ids []string) []string {
	out := make([]string, 0, len(ids))
	seen := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; ok {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out
}
