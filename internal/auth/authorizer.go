package auth

import "strings"

// Authorizer decides requests against an immutable set of ACLs, with the
// rules of Kafka's StandardAuthorizer:
//
//   - a super user may do anything;
//   - the ACLs that apply to a resource are its literal ones, the literal
//     wildcard "*" of its type, and the prefixed ones whose prefix starts
//     its name;
//   - a DENY that matches the principal (or User:*), the host (or *) and
//     the operation (or ALL) wins over any ALLOW;
//   - an ALLOW of READ, WRITE, DELETE or ALTER also allows DESCRIBE, and an
//     ALLOW of ALTER_CONFIGS also allows DESCRIBE_CONFIGS;
//   - when no ACL at all applies to the resource, allowEveryoneIfNoACL
//     decides (allow.everyone.if.no.acl.found).
//
// An Authorizer is built once per metadata image and then only read, so
// any number of requests may use it without locks. Authorize allocates
// nothing: it is on the produce and fetch path.
type Authorizer struct {
	superUsers           map[Principal]bool
	allowEveryoneIfNoACL bool
	byType               map[ResourceType]*resourceACLs
	bindings             []Binding
}

// resourceACLs indexes the ACLs of one resource type.
type resourceACLs struct {
	literal  map[string][]Binding // by resource name, "*" included
	prefixed map[string][]Binding // by prefix
	// prefixLengths are the distinct lengths of the prefixes, longest
	// first, so a name is checked with one map lookup per length rather
	// than one per prefixed ACL.
	prefixLengths []int
}

// AuthorizerConfig is the static part of an authorizer: who is a super
// user and what happens to a resource no ACL names.
type AuthorizerConfig struct {
	SuperUsers           []string // principals, "User:admin"
	AllowEveryoneIfNoACL bool
}

// NewAuthorizer indexes bindings for Authorize. Bindings that do not
// validate are ignored (the metadata log only holds valid ones).
func NewAuthorizer(cfg AuthorizerConfig, bindings []Binding) *Authorizer {
	a := &Authorizer{
		superUsers:           make(map[Principal]bool, len(cfg.SuperUsers)),
		allowEveryoneIfNoACL: cfg.AllowEveryoneIfNoACL,
		byType:               make(map[ResourceType]*resourceACLs),
		bindings:             bindings,
	}
	for _, u := range cfg.SuperUsers {
		if typ, name, ok := strings.Cut(u, ":"); ok {
			a.superUsers[Principal{Type: typ, Name: name}] = true
		}
	}
	for _, b := range bindings {
		if b.Validate() != nil {
			continue
		}
		r := a.byType[b.ResourceType]
		if r == nil {
			r = &resourceACLs{literal: make(map[string][]Binding), prefixed: make(map[string][]Binding)}
			a.byType[b.ResourceType] = r
		}
		if b.PatternType == PatternPrefixed {
			if len(r.prefixed[b.ResourceName]) == 0 {
				r.addPrefixLength(len(b.ResourceName))
			}
			r.prefixed[b.ResourceName] = append(r.prefixed[b.ResourceName], b)
		} else {
			r.literal[b.ResourceName] = append(r.literal[b.ResourceName], b)
		}
	}
	return a
}

func (r *resourceACLs) addPrefixLength(n int) {
	for i, l := range r.prefixLengths {
		if l == n {
			return
		}
		if l < n {
			r.prefixLengths = append(r.prefixLengths[:i], append([]int{n}, r.prefixLengths[i:]...)...)
			return
		}
	}
	r.prefixLengths = append(r.prefixLengths, n)
}

// Bindings returns every binding the authorizer was built from.
func (a *Authorizer) Bindings() []Binding { return a.bindings }

// IsSuperUser reports whether principal is listed in super.users.
func (a *Authorizer) IsSuperUser(p Principal) bool {
	return len(a.superUsers) > 0 && a.superUsers[p]
}

// Authorize reports whether principal, connected from host, may perform
// op on the resource of type rt named name.
func (a *Authorizer) Authorize(p Principal, host string, op Operation, rt ResourceType, name string) bool {
	if a.IsSuperUser(p) {
		return true
	}
	r := a.byType[rt]
	if r == nil {
		return a.allowEveryoneIfNoACL
	}
	var v verdict
	v.scan(r.literal[name], p, host, op)
	v.scan(r.literal[WildcardResource], p, host, op)
	for _, n := range r.prefixLengths {
		if n <= len(name) {
			v.scan(r.prefixed[name[:n]], p, host, op)
		}
	}
	switch {
	case v.denied:
		return false
	case v.allowed:
		return true
	case !v.found:
		return a.allowEveryoneIfNoACL
	}
	return false
}

// verdict accumulates the ACLs that apply to one resource.
type verdict struct {
	found   bool // some ACL names the resource, for anyone
	allowed bool
	denied  bool
}

func (v *verdict) scan(acls []Binding, p Principal, host string, op Operation) {
	for i := range acls {
		b := &acls[i]
		v.found = true
		if !principalIs(b.Principal, p) && b.Principal != WildcardPrincipal {
			continue
		}
		if b.Host != host && b.Host != WildcardHost {
			continue
		}
		if b.Permission == PermissionDeny {
			// A deny is never widened by implication: DENY READ does not
			// deny DESCRIBE.
			if b.Operation == op || b.Operation == OpAll {
				v.denied = true
			}
			continue
		}
		if allows(b.Operation, op) {
			v.allowed = true
		}
	}
}

// principalIs reports whether s, an ACL's "Type:name", is p, without
// building p's string on the hot path.
func principalIs(s string, p Principal) bool {
	return len(s) == len(p.Type)+1+len(p.Name) && s[len(p.Type)] == ':' &&
		s[:len(p.Type)] == p.Type && s[len(p.Type)+1:] == p.Name
}

// allows reports whether an ALLOW of granted permits op.
func allows(granted, op Operation) bool {
	if granted == op || granted == OpAll {
		return true
	}
	switch op {
	case OpDescribe:
		return granted == OpRead || granted == OpWrite || granted == OpDelete || granted == OpAlter
	case OpDescribeConfigs:
		return granted == OpAlterConfigs
	}
	return false
}

// AuthorizeAny reports whether principal may perform op on some resource
// of type rt: Kafka's authorizeByResourceType, which lets a principal with
// a WRITE on any transactional id (or prefix) act as an idempotent
// producer, and decides whether topic creation is possible at all. A DENY
// only blocks this when it is a literal wildcard or a prefixed "" that
// covers every name, as in Kafka.
func (a *Authorizer) AuthorizeAny(p Principal, host string, op Operation, rt ResourceType) bool {
	if a.IsSuperUser(p) {
		return true
	}
	r := a.byType[rt]
	if r == nil {
		return a.allowEveryoneIfNoACL
	}
	var wildcard verdict
	wildcard.scan(r.literal[WildcardResource], p, host, op)
	if wildcard.denied {
		return false
	}
	if wildcard.allowed {
		return true
	}
	for name, acls := range r.literal {
		if v := scanOne(acls, p, host, op); v.allowed && !v.denied && !a.deniedByPrefix(r, name, p, host, op) {
			return true
		}
	}
	for prefix, acls := range r.prefixed {
		if v := scanOne(acls, p, host, op); v.allowed && !v.denied && !a.deniedByPrefix(r, prefix, p, host, op) {
			return true
		}
	}
	return false
}

func scanOne(acls []Binding, p Principal, host string, op Operation) verdict {
	var v verdict
	v.scan(acls, p, host, op)
	return v
}

// deniedByPrefix reports whether a prefixed DENY covers name.
func (a *Authorizer) deniedByPrefix(r *resourceACLs, name string, p Principal, host string, op Operation) bool {
	for prefix, acls := range r.prefixed {
		if strings.HasPrefix(name, prefix) && scanOne(acls, p, host, op).denied {
			return true
		}
	}
	return false
}
