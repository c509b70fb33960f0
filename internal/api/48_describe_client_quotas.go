package api

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/metadata"
)

// DescribeClientQuotas v0–1 (KIP-546), read from this node's image: the
// quotas of every entity that matches the filter. Like Kafka, each filter
// component names an entity type once and matches a name exactly (0), the
// type's default entity (1) or any entity of the type (2); a strict
// filter also leaves out entities with types it does not name. An ip
// component cannot be combined with a user or client-id one.
var describeClientQuotasHandler = handler{key: 48, minVersion: 0, maxVersion: 1, serve: serveDescribeClientQuotas}

// quotaFilter is a checked DescribeClientQuotas filter: exact holds the
// types matched by name or default, anyOf the types that need only be
// present.
type quotaFilter struct {
	exact  map[string]metadata.QuotaName
	anyOf  []string
	strict bool
}

func serveDescribeClientQuotas(_ context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	// Quotas are cluster configs to Kafka: DESCRIBE_CONFIGS on the cluster.
	err := b.authz(r).cluster(auth.OpDescribeConfigs)
	var filter quotaFilter
	if err == nil {
		filter, err = newQuotaFilter(req)
	}
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
		return resp, nil
	}
	all := b.Control.Image().AllClientQuotas()
	entities := make([]metadata.QuotaEntity, 0, len(all))
	for e := range all {
		if filter.matches(e) {
			entities = append(entities, e)
		}
	}
	// Kafka's order is a hash map's; a sorted one makes answers stable.
	slices.SortFunc(entities, func(a, b metadata.QuotaEntity) int { return strings.Compare(a.String(), b.String()) })
	for _, e := range entities {
		entry := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, p := range e.Parts() {
			ent := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			ent.Type = p.Type
			if !p.Default {
				ent.Name = kmsg.StringPtr(p.Name)
			}
			entry.Entity = append(entry.Entity, ent)
		}
		values := all[e]
		keys := make([]string, 0, len(values))
		for k := range values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := kmsg.NewDescribeClientQuotasResponseEntryValue()
			v.Key, v.Value = k, values[k]
			entry.Values = append(entry.Values, v)
		}
		resp.Entries = append(resp.Entries, entry)
	}
	return resp, nil
}

func newQuotaFilter(req *kmsg.DescribeClientQuotasRequest) (quotaFilter, error) {
	f := quotaFilter{exact: map[string]metadata.QuotaName{}, strict: req.Strict}
	seen := map[string]bool{}
	for _, c := range req.Components {
		switch c.EntityType {
		case metadata.QuotaEntityUser, metadata.QuotaEntityClientID, metadata.QuotaEntityIP:
		default:
			return f, adminInvalidRequest("quota filter: unknown entity type %q (want user, client-id or ip)", c.EntityType)
		}
		if seen[c.EntityType] {
			return f, adminInvalidRequest("quota filter: entity type %q appears more than once", c.EntityType)
		}
		seen[c.EntityType] = true
		switch c.MatchType {
		case kmsg.QuotasMatchTypeExact:
			if c.Match == nil {
				return f, adminInvalidRequest("quota filter: an exact match on %q needs a name", c.EntityType)
			}
			f.exact[c.EntityType] = metadata.Named(*c.Match)
		case kmsg.QuotasMatchTypeDefault:
			f.exact[c.EntityType] = metadata.DefaultName
		case kmsg.QuotasMatchTypeAny:
			f.anyOf = append(f.anyOf, c.EntityType)
		default:
			return f, adminInvalidRequest("quota filter: unknown match type %d", c.MatchType)
		}
	}
	if seen[metadata.QuotaEntityIP] && (seen[metadata.QuotaEntityUser] || seen[metadata.QuotaEntityClientID]) {
		return f, adminInvalidRequest("quota filter: an ip component cannot be combined with user or client-id")
	}
	return f, nil
}

func quotaNameOf(e metadata.QuotaEntity, typ string) metadata.QuotaName {
	switch typ {
	case metadata.QuotaEntityUser:
		return e.User
	case metadata.QuotaEntityClientID:
		return e.ClientID
	default:
		return e.IP
	}
}

func (f quotaFilter) matches(e metadata.QuotaEntity) bool {
	if f.strict && len(e.Parts()) != len(f.exact)+len(f.anyOf) {
		return false
	}
	for typ, want := range f.exact {
		if quotaNameOf(e, typ) != want {
			return false
		}
	}
	for _, typ := range f.anyOf {
		if !quotaNameOf(e, typ).Set {
			return false
		}
	}
	return true
}
