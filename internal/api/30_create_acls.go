package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
)

// CreateAcls v0–3: store ACLs in the metadata log, through the controller,
// so every node authorizes with the same ones once it has replayed them.
// Each creation has its own result; an invalid one (a MATCH pattern, an
// unknown operation, a principal without a type) is INVALID_REQUEST and
// the others are still created. Creating an ACL that exists succeeds. It
// needs ALTER on the cluster and an authorizer (SECURITY_DISABLED).
var createACLsHandler = handler{key: 30, minVersion: 0, maxVersion: 3, serve: serveCreateACLs}

// aclTimeoutMs bounds an ACL change: the ACL requests carry no timeout.
const aclTimeoutMs = 30_000

func serveCreateACLs(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	errs := make([]error, len(req.Creations))
	if err := aclRequestCheck(b.authz(r), auth.OpAlter); err != nil {
		for i := range errs {
			errs[i] = err
		}
	} else if len(req.Creations) > 0 {
		creq := controller.CreateACLsRequest{Bindings: make([]auth.Binding, len(req.Creations))}
		for i, c := range req.Creations {
			creq.Bindings[i] = auth.Binding{
				ResourceType: auth.ResourceType(c.ResourceType), ResourceName: c.ResourceName,
				PatternType: auth.PatternType(c.ResourcePatternType), Principal: c.Principal, Host: c.Host,
				Operation: auth.Operation(c.Operation), Permission: auth.Permission(c.PermissionType),
			}
		}
		ctx, cancel := adminContext(ctx, aclTimeoutMs)
		defer cancel()
		cresp, err := adminSubmit[controller.CreateACLsResponse](ctx, b, kraft.CreateACLs{Request: creq})
		if err == nil && len(cresp.Results) != len(errs) {
			err = fmt.Errorf("controller answered %d ACLs for %d", len(cresp.Results), len(errs))
		}
		for i := range errs {
			if err != nil {
				errs[i] = err
			} else {
				errs[i] = cresp.Results[i]
			}
		}
	}
	for _, err := range errs {
		res := kmsg.NewCreateACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
