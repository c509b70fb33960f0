package api

import (
	"context"
	"net/netip"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/metadata"
)

// AlterClientQuotas v0–1 (KIP-546), decided by the controller, which
// checks entities, keys and values (controller.AlterClientQuotas); an ip
// entity's name must be an IP address, which only the edge may parse. A
// null entity name is the type's default entity.
var alterClientQuotasHandler = handler{key: 49, minVersion: 0, maxVersion: 1, serve: serveAlterClientQuotas}

// alterClientQuotasTimeoutMs bounds the wait for the controller: the
// request has no timeout of its own.
const alterClientQuotasTimeoutMs = 30_000

func serveAlterClientQuotas(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.AlterClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	errs := make([]error, len(req.Entries))
	creq := controller.AlterClientQuotasRequest{ValidateOnly: req.ValidateOnly}
	var sent []int
	// ALTER_CONFIGS on the cluster, as Kafka asks: every entry is refused
	// without it.
	denied := b.authz(r).cluster(auth.OpAlterConfigs)
	for i, entry := range req.Entries {
		if denied != nil {
			errs[i] = denied
			continue
		}
		parts := make([]metadata.QuotaEntityPart, len(entry.Entity))
		for j, e := range entry.Entity {
			parts[j] = metadata.QuotaEntityPart{Type: e.Type, Default: e.Name == nil}
			if e.Name != nil {
				parts[j].Name = *e.Name
			}
			if e.Type == metadata.QuotaEntityIP && e.Name != nil {
				if _, err := netip.ParseAddr(*e.Name); err != nil {
					errs[i] = adminInvalidRequest("quota entity ip %q is not an IP address", *e.Name)
				}
			}
		}
		if errs[i] != nil {
			continue
		}
		ops := make([]controller.QuotaOp, len(entry.Ops))
		for j, op := range entry.Ops {
			ops[j] = controller.QuotaOp{Key: op.Key, Value: op.Value, Remove: op.Remove}
		}
		creq.Entries = append(creq.Entries, controller.AlterClientQuotasEntry{Entity: parts, Ops: ops})
		sent = append(sent, i)
	}
	if len(sent) > 0 {
		ctx, cancel := adminContext(ctx, alterClientQuotasTimeoutMs)
		defer cancel()
		cresp, err := adminSubmit[controller.AlterClientQuotasResponse](ctx, b, kraft.AlterClientQuotas{Request: creq})
		for k, i := range sent {
			switch {
			case err != nil:
				errs[i] = err
			case k < len(cresp.Entries):
				errs[i] = cresp.Entries[k].Err
			}
		}
	}
	for i, entry := range req.Entries {
		out := kmsg.NewAlterClientQuotasResponseEntry()
		out.ErrorCode, out.ErrorMessage = errorCode(errs[i]), errorMessage(errs[i])
		for _, e := range entry.Entity {
			ent := kmsg.NewAlterClientQuotasResponseEntryEntity()
			ent.Type, ent.Name = e.Type, e.Name
			out.Entity = append(out.Entity, ent)
		}
		resp.Entries = append(resp.Entries, out)
	}
	return resp, nil
}
