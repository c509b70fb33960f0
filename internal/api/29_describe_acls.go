package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// DescribeAcls v0–3: the ACLs matching one filter, grouped by resource
// pattern. v0 has no pattern type (kmsg reads it as LITERAL, Kafka's v0
// meaning); v1 adds it (KIP-290), v2 is flexible. It needs DESCRIBE on the
// cluster, and an authorizer: without one Kafka answers SECURITY_DISABLED,
// as there is nothing that would enforce an ACL.
var describeACLsHandler = handler{key: 29, minVersion: 0, maxVersion: 3, serve: serveDescribeACLs}

func serveDescribeACLs(_ context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	z := b.authz(r)
	f := auth.Filter{
		ResourceType: auth.ResourceType(req.ResourceType), ResourceName: aclFilterString(req.ResourceName),
		PatternType: auth.PatternType(req.ResourcePatternType), Principal: aclFilterString(req.Principal),
		Host: aclFilterString(req.Host), Operation: auth.Operation(req.Operation), Permission: auth.Permission(req.PermissionType),
	}
	err := aclRequestCheck(z, auth.OpDescribe)
	if err == nil {
		err = f.Validate()
	}
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
		return resp, nil
	}
	resp.Resources = describeACLsGroup(b.Control.Image().ACLBindings(), f)
	return resp, nil
}

// describeACLsGroup lists the bindings matching f, one entry per resource
// pattern in order of first appearance (the image keeps ACLs by id).
func describeACLsGroup(bindings []auth.Binding, f auth.Filter) []kmsg.DescribeACLsResponseResource {
	type pattern struct {
		rt   auth.ResourceType
		name string
		pt   auth.PatternType
	}
	index := map[pattern]int{}
	out := []kmsg.DescribeACLsResponseResource{}
	for _, bd := range bindings {
		if !f.Matches(bd) {
			continue
		}
		key := pattern{bd.ResourceType, bd.ResourceName, bd.PatternType}
		i, ok := index[key]
		if !ok {
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName = kmsg.ACLResourceType(bd.ResourceType), bd.ResourceName
			res.ResourcePatternType = kmsg.ACLResourcePatternType(bd.PatternType)
			i = len(out)
			index[key] = i
			out = append(out, res)
		}
		acl := kmsg.NewDescribeACLsResponseResourceACL()
		acl.Principal, acl.Host = bd.Principal, bd.Host
		acl.Operation, acl.PermissionType = kmsg.ACLOperation(bd.Operation), kmsg.ACLPermissionType(bd.Permission)
		out[i].ACLs = append(out[i].ACLs, acl)
	}
	return out
}

// aclFilterString is a filter's nullable string: null matches any.
func aclFilterString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// aclRequestCheck is what every ACL request needs: an authorizer, and op
// (DESCRIBE to read ACLs, ALTER to change them) on the cluster.
func aclRequestCheck(z *authz, op auth.Operation) error {
	if !z.enabled() {
		return fmt.Errorf("%w: ACLs would not be enforced", auth.ErrSecurityDisabled)
	}
	return z.cluster(op)
}
