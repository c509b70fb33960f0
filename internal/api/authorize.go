package api

import (
	"fmt"
	"net"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/metadata"
)

// Authorization. With an authorizer configured (authorizer.class.name),
// every handler asks, for every resource it touches, whether the
// request's principal may do what the request does, before it looks at
// whether the resource exists: a principal that may not describe a topic
// must not learn that it exists either. Without one, every check passes.

// authorizerCache is the authorizer built from one set of ACLs. Images
// change with every leader or ISR move, but their ACL list is shared until
// an ACL changes, so the cache is keyed on the list itself: the authorizer
// is rebuilt when ACLs change, not when the image does.
type authorizerCache struct {
	first *metadata.AccessControlEntry // &acls[0], nil when none
	n     int
	a     *auth.Authorizer
}

// authorizer returns the authorizer for the current image, nil when
// authorization is off.
func (b *Broker) authorizer() *auth.Authorizer {
	if b.Config.Authorizer == nil {
		return nil
	}
	acls := b.Control.Image().ACLs()
	var first *metadata.AccessControlEntry
	if len(acls) > 0 {
		first = &acls[0]
	}
	if c := b.authzCache.Load(); c != nil && c.first == first && c.n == len(acls) {
		return c.a
	}
	bindings := make([]auth.Binding, len(acls))
	for i, e := range acls {
		bindings[i] = e.Binding
	}
	c := &authorizerCache{first: first, n: len(acls), a: auth.NewAuthorizer(*b.Config.Authorizer, bindings)}
	b.authzCache.Store(c)
	return c.a
}

// authz is what one request's checks need: the authorizer as of the
// request's start, who it comes from and from which host.
type authz struct {
	a         *auth.Authorizer // nil: authorization is off
	principal auth.Principal
	host      string
}

// authz returns the request's authorization context, built once.
func (b *Broker) authz(r *Request) *authz {
	if !r.authzReady {
		host, _, err := net.SplitHostPort(r.ClientAddr)
		if err != nil {
			host = r.ClientAddr
		}
		r.authz, r.authzReady = authz{a: b.authorizer(), principal: r.Principal, host: host}, true
	}
	return &r.authz
}

// enabled reports whether an authorizer is configured.
func (z *authz) enabled() bool { return z.a != nil }

func (z *authz) allowed(op auth.Operation, rt auth.ResourceType, name string) bool {
	return z.a == nil || z.a.Authorize(z.principal, z.host, op, rt, name)
}

// topic returns nil when the principal may perform op on the topic, else
// an error that maps to TOPIC_AUTHORIZATION_FAILED.
func (z *authz) topic(op auth.Operation, name string) error {
	if z.allowed(op, auth.ResourceTopic, name) {
		return nil
	}
	return fmt.Errorf("%w %q: %s may not %s it", auth.ErrTopicAuthorizationFailed, name, z.principal, op)
}

// group is topic for a consumer group: GROUP_AUTHORIZATION_FAILED.
func (z *authz) group(op auth.Operation, name string) error {
	if z.allowed(op, auth.ResourceGroup, name) {
		return nil
	}
	return fmt.Errorf("%w %q: %s may not %s it", auth.ErrGroupAuthorizationFailed, name, z.principal, op)
}

// cluster is topic for the cluster resource: CLUSTER_AUTHORIZATION_FAILED.
func (z *authz) cluster(op auth.Operation) error {
	if z.allowed(op, auth.ResourceCluster, auth.ClusterName) {
		return nil
	}
	return fmt.Errorf("%w: %s may not %s the cluster", auth.ErrClusterAuthorizationFailed, z.principal, op)
}

// transactionalID is topic for a transactional id:
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
func (z *authz) transactionalID(op auth.Operation, id string) error {
	if z.allowed(op, auth.ResourceTransactionalID, id) {
		return nil
	}
	return fmt.Errorf("%w %q: %s may not %s it", auth.ErrTransactionalIDAuthorizationFailed, id, z.principal, op)
}

// configResource authorizes op on a config resource: a topic's configs
// are the topic's, a broker's (or broker logger's) the cluster's. Other
// types are left to the handler's own validation.
func (z *authz) configResource(op auth.Operation, typ kmsg.ConfigResourceType, name string) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		return z.topic(op, name)
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		return z.cluster(op)
	case kmsg.ConfigResourceTypeGroupConfig:
		return z.group(op, name)
	}
	return nil
}

// anyResource reports whether the principal may perform op on some
// resource of the type (Kafka's authorizeByResourceType).
func (z *authz) anyResource(op auth.Operation, rt auth.ResourceType) bool {
	return z.a == nil || z.a.AuthorizeAny(z.principal, z.host, op, rt)
}

// operations is an authorized_operations bit field (bit n set: operation
// n allowed) for a resource: the bits of all the resource type supports
// that the principal may perform.
func (z *authz) operations(rt auth.ResourceType, name string, all int32) int32 {
	if z.a == nil {
		return all
	}
	var allowed int32
	for op := auth.OpRead; op <= auth.OpDescribeTokens; op++ {
		if all&(1<<op) != 0 && z.allowed(op, rt, name) {
			allowed |= 1 << op
		}
	}
	return allowed
}

// authzState is embedded in Broker: the cached authorizer.
type authzState struct {
	authzCache atomic.Pointer[authorizerCache]
}
