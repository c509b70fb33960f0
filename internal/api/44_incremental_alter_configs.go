package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
)

// IncrementalAlterConfigs v0–1, decided by the controller: set, delete
// (revert to the default), append to or subtract from single keys of a
// topic or broker resource, leaving the others as they are. The resource
// rules are AlterConfigs' (alterConfigsPrecheck).
var incrementalAlterConfigsHandler = handler{key: 44, minVersion: 0, maxVersion: 1, serve: serveIncrementalAlterConfigs}

func serveIncrementalAlterConfigs(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	keys := make([]alterConfigsKey, len(req.Resources))
	for i, res := range req.Resources {
		keys[i] = alterConfigsKey{res.ResourceType, res.ResourceName}
	}
	// Only DELETE may leave the value null.
	errs := alterConfigsPrecheck(b, keys, func(i int) (nulls []string) {
		for _, c := range req.Resources[i].Configs {
			if c.Value == nil && c.Op != kmsg.IncrementalAlterConfigOpDelete {
				nulls = append(nulls, c.Name)
			}
		}
		return nulls
	})
	alterConfigsAuthorize(b.authz(r), keys, errs)
	creq := controller.IncrementalAlterConfigsRequest{ValidateOnly: req.ValidateOnly}
	var sent []int
	for i, res := range req.Resources {
		if errs[i] != nil {
			continue
		}
		ir := controller.IncrementalAlterConfigsResource{ConfigResource: keys[i].resource()}
		for _, c := range res.Configs {
			op := controller.ConfigOp{Name: c.Name, Op: controller.ConfigOpType(c.Op)}
			if c.Value != nil {
				op.Value = *c.Value
			}
			ir.Ops = append(ir.Ops, op)
		}
		creq.Resources = append(creq.Resources, ir)
		sent = append(sent, i)
	}
	if len(sent) > 0 {
		ctx, cancel := adminContext(ctx, alterConfigsTimeoutMs)
		defer cancel()
		cresp, err := adminSubmit[controller.AlterConfigsResponse](ctx, b, kraft.IncrementalAlterConfigs{Request: creq})
		alterConfigsResults(errs, sent, cresp, err)
	}
	for i, k := range keys {
		out := kmsg.NewIncrementalAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = k.typ, k.name
		out.ErrorCode, out.ErrorMessage = errorCode(errs[i]), errorMessage(errs[i])
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}
