package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
)

// DeleteAcls v0–3: remove every ACL matching each filter (a MATCH filter
// removes every ACL that applies to the name, prefixes and wildcard
// included), answering per filter with the ACLs it removed. It needs ALTER
// on the cluster and an authorizer (SECURITY_DISABLED).
var deleteACLsHandler = handler{key: 31, minVersion: 0, maxVersion: 3, serve: serveDeleteACLs}

func serveDeleteACLs(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	results := make([]controller.DeleteACLsResult, len(req.Filters))
	if err := aclRequestCheck(b.authz(r), auth.OpAlter); err != nil {
		for i := range results {
			results[i].Err = err
		}
	} else if len(req.Filters) > 0 {
		creq := controller.DeleteACLsRequest{Filters: make([]auth.Filter, len(req.Filters))}
		for i, f := range req.Filters {
			creq.Filters[i] = auth.Filter{
				ResourceType: auth.ResourceType(f.ResourceType), ResourceName: aclFilterString(f.ResourceName),
				PatternType: auth.PatternType(f.ResourcePatternType), Principal: aclFilterString(f.Principal),
				Host: aclFilterString(f.Host), Operation: auth.Operation(f.Operation), Permission: auth.Permission(f.PermissionType),
			}
		}
		ctx, cancel := adminContext(ctx, aclTimeoutMs)
		defer cancel()
		cresp, err := adminSubmit[controller.DeleteACLsResponse](ctx, b, kraft.DeleteACLs{Request: creq})
		if err == nil && len(cresp.Results) != len(results) {
			err = fmt.Errorf("controller answered %d filters for %d", len(cresp.Results), len(results))
		}
		for i := range results {
			if err != nil {
				results[i].Err = err
			} else {
				results[i] = cresp.Results[i]
			}
		}
	}
	for _, res := range results {
		out := kmsg.NewDeleteACLsResponseResult()
		out.ErrorCode, out.ErrorMessage = errorCode(res.Err), errorMessage(res.Err)
		out.MatchingACLs = []kmsg.DeleteACLsResponseResultMatchingACL{}
		for _, bd := range res.Deleted {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName = kmsg.ACLResourceType(bd.ResourceType), bd.ResourceName
			m.ResourcePatternType = kmsg.ACLResourcePatternType(bd.PatternType)
			m.Principal, m.Host = bd.Principal, bd.Host
			m.Operation, m.PermissionType = kmsg.ACLOperation(bd.Operation), kmsg.ACLPermissionType(bd.Permission)
			out.MatchingACLs = append(out.MatchingACLs, m)
		}
		resp.Results = append(resp.Results, out)
	}
	return resp, nil
}
