package auth

import (
	"fmt"
	"testing"
)

func allow(rt ResourceType, pt PatternType, name, principal string, op Operation) Binding {
	return Binding{ResourceType: rt, ResourceName: name, PatternType: pt, Principal: principal, Host: "*", Operation: op, Permission: PermissionAllow}
}

func deny(rt ResourceType, pt PatternType, name, principal string, op Operation) Binding {
	b := allow(rt, pt, name, principal, op)
	b.Permission = PermissionDeny
	return b
}

func TestAuthorizerRules(t *testing.T) {
	alice, bob := User("alice"), User("bob")
	acls := []Binding{
		allow(ResourceTopic, PatternLiteral, "orders", "User:alice", OpRead),
		allow(ResourceTopic, PatternPrefixed, "logs-", "User:alice", OpWrite),
		deny(ResourceTopic, PatternLiteral, "logs-secret", "User:alice", OpWrite),
		allow(ResourceTopic, PatternLiteral, "*", "User:bob", OpDescribe),
		allow(ResourceTopic, PatternLiteral, "cfg", "User:alice", OpAlterConfigs),
		allow(ResourceGroup, PatternLiteral, "g", "User:*", OpAll),
		deny(ResourceGroup, PatternLiteral, "g", "User:bob", OpAll),
		{ResourceType: ResourceTopic, ResourceName: "hosted", PatternType: PatternLiteral, Principal: "User:alice",
			Host: "10.0.0.1", Operation: OpRead, Permission: PermissionAllow},
	}
	a := NewAuthorizer(AuthorizerConfig{SuperUsers: []string{"User:root"}}, acls)
	cases := []struct {
		p    Principal
		host string
		op   Operation
		rt   ResourceType
		name string
		want bool
	}{
		{alice, "1.2.3.4", OpRead, ResourceTopic, "orders", true},
		{alice, "1.2.3.4", OpDescribe, ResourceTopic, "orders", true}, // READ implies DESCRIBE
		{alice, "1.2.3.4", OpWrite, ResourceTopic, "orders", false},
		{bob, "1.2.3.4", OpRead, ResourceTopic, "orders", false},
		{bob, "1.2.3.4", OpDescribe, ResourceTopic, "orders", true}, // wildcard
		{bob, "1.2.3.4", OpDescribe, ResourceTopic, "anything", true},
		{alice, "1.2.3.4", OpWrite, ResourceTopic, "logs-app", true}, // prefixed
		{alice, "1.2.3.4", OpWrite, ResourceTopic, "logs", false},
		{alice, "1.2.3.4", OpWrite, ResourceTopic, "logs-secret", false}, // deny wins
		{alice, "1.2.3.4", OpDescribe, ResourceTopic, "logs-secret", true},
		{alice, "1.2.3.4", OpDescribeConfigs, ResourceTopic, "cfg", true}, // ALTER_CONFIGS implies DESCRIBE_CONFIGS
		{alice, "1.2.3.4", OpAlter, ResourceTopic, "cfg", false},
		{alice, "1.2.3.4", OpRead, ResourceGroup, "g", true},
		{bob, "1.2.3.4", OpRead, ResourceGroup, "g", false}, // DENY ALL beats ALLOW ALL
		{alice, "10.0.0.1", OpRead, ResourceTopic, "hosted", true},
		{alice, "10.0.0.2", OpRead, ResourceTopic, "hosted", false},
		{User("root"), "1.2.3.4", OpAlter, ResourceCluster, ClusterName, true}, // super user
		{alice, "1.2.3.4", OpAlter, ResourceCluster, ClusterName, false},       // no ACL, default deny
		{alice, "1.2.3.4", OpRead, ResourceTopic, "unnamed", false},
	}
	for _, c := range cases {
		if got := a.Authorize(c.p, c.host, c.op, c.rt, c.name); got != c.want {
			t.Errorf("Authorize(%s, %s, %s, %s %q) = %v, want %v", c.p, c.host, c.op, c.rt, c.name, got, c.want)
		}
	}
}

func TestAuthorizerAllowEveryoneIfNoACLFound(t *testing.T) {
	a := NewAuthorizer(AuthorizerConfig{AllowEveryoneIfNoACL: true},
		[]Binding{allow(ResourceTopic, PatternLiteral, "guarded", "User:alice", OpRead)})
	if !a.Authorize(User("bob"), "h", OpWrite, ResourceTopic, "open") {
		t.Error("a topic no ACL names is not open to everyone")
	}
	if a.Authorize(User("bob"), "h", OpRead, ResourceTopic, "guarded") {
		t.Error("a topic with an ACL for someone else is open to bob")
	}
	if !a.Authorize(User("bob"), "h", OpAlter, ResourceCluster, ClusterName) {
		t.Error("a cluster no ACL names is not open to everyone")
	}
}

func TestAuthorizerAuthorizeAny(t *testing.T) {
	a := NewAuthorizer(AuthorizerConfig{}, []Binding{
		allow(ResourceTransactionalID, PatternPrefixed, "app-", "User:alice", OpWrite),
		allow(ResourceTransactionalID, PatternLiteral, "x", "User:bob", OpWrite),
		deny(ResourceTransactionalID, PatternLiteral, "*", "User:bob", OpWrite),
	})
	if !a.AuthorizeAny(User("alice"), "h", OpWrite, ResourceTransactionalID) {
		t.Error("alice with WRITE on a prefix may not write some transactional id")
	}
	if a.AuthorizeAny(User("bob"), "h", OpWrite, ResourceTransactionalID) {
		t.Error("a wildcard DENY did not block bob")
	}
	if a.AuthorizeAny(User("carol"), "h", OpWrite, ResourceTransactionalID) {
		t.Error("carol with no ACL may write some transactional id")
	}
}

func TestFilterMatches(t *testing.T) {
	lit := allow(ResourceTopic, PatternLiteral, "orders", "User:alice", OpRead)
	wild := allow(ResourceTopic, PatternLiteral, "*", "User:alice", OpRead)
	pre := allow(ResourceTopic, PatternPrefixed, "ord", "User:alice", OpRead)
	other := allow(ResourceGroup, PatternLiteral, "orders", "User:bob", OpWrite)
	cases := []struct {
		f    Filter
		want []bool // lit, wild, pre, other
	}{
		{Filter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpAny, Permission: PermissionAny}, []bool{true, true, true, true}},
		{Filter{ResourceType: ResourceTopic, PatternType: PatternMatch, ResourceName: "orders", Operation: OpAny, Permission: PermissionAny}, []bool{true, true, true, false}},
		{Filter{ResourceType: ResourceTopic, PatternType: PatternLiteral, ResourceName: "orders", Operation: OpAny, Permission: PermissionAny}, []bool{true, false, false, false}},
		{Filter{ResourceType: ResourceAny, PatternType: PatternAny, ResourceName: "orders", Operation: OpAny, Permission: PermissionAny}, []bool{true, false, false, true}},
		{Filter{ResourceType: ResourceAny, PatternType: PatternPrefixed, Operation: OpAny, Permission: PermissionAny}, []bool{false, false, true, false}},
		{Filter{ResourceType: ResourceAny, PatternType: PatternAny, Principal: "User:bob", Operation: OpAny, Permission: PermissionAny}, []bool{false, false, false, true}},
		{Filter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpRead, Permission: PermissionDeny}, []bool{false, false, false, false}},
	}
	for i, c := range cases {
		for j, b := range []Binding{lit, wild, pre, other} {
			if got := c.f.Matches(b); got != c.want[j] {
				t.Errorf("case %d: filter %+v matches %s = %v, want %v", i, c.f, b, got, c.want[j])
			}
		}
	}
}

func TestBindingValidate(t *testing.T) {
	good := allow(ResourceTopic, PatternLiteral, "t", "User:alice", OpRead)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*Binding){
		func(b *Binding) { b.PatternType = PatternMatch },
		func(b *Binding) { b.Operation = OpAny },
		func(b *Binding) { b.Permission = PermissionAny },
		func(b *Binding) { b.ResourceType = ResourceAny },
		func(b *Binding) { b.Principal = "alice" },
		func(b *Binding) { b.ResourceName = "" },
		func(b *Binding) { b.ResourceType, b.ResourceName = ResourceCluster, "kafka" },
	}
	for i, mutate := range bad {
		b := good
		mutate(&b)
		if b.Validate() == nil {
			t.Errorf("case %d: %s validated", i, b)
		}
	}
}

func TestParseEnums(t *testing.T) {
	if op, err := ParseOperation("describe-configs"); err != nil || op != OpDescribeConfigs {
		t.Errorf("ParseOperation = %v, %v", op, err)
	}
	if rt, err := ParseResourceType("Transactional_Id"); err != nil || rt != ResourceTransactionalID {
		t.Errorf("ParseResourceType = %v, %v", rt, err)
	}
	if _, err := ParsePermission("UNKNOWN"); err == nil {
		t.Error("UNKNOWN parsed as a permission")
	}
}

// BenchmarkAuthorize measures the check every produced and fetched topic
// pays: a literal ACL among many, with prefixed ACLs of a few lengths.
func BenchmarkAuthorize(b *testing.B) {
	var acls []Binding
	for i := range 1000 {
		acls = append(acls, allow(ResourceTopic, PatternLiteral, fmt.Sprintf("topic-%d", i), fmt.Sprintf("User:u%d", i%50), OpWrite))
	}
	for i := range 100 {
		acls = append(acls, allow(ResourceTopic, PatternPrefixed, fmt.Sprintf("team%d-", i), "User:u1", OpRead))
	}
	acls = append(acls, deny(ResourceTopic, PatternLiteral, "*", "User:evil", OpAll))
	a := NewAuthorizer(AuthorizerConfig{SuperUsers: []string{"User:admin"}}, acls)
	p := User("u7")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if !a.Authorize(p, "10.1.2.3", OpWrite, ResourceTopic, "topic-507") {
			b.Fatal("denied")
		}
	}
}

func TestParseSuperUsers(t *testing.T) {
	got := ParseSuperUsers(" User:admin ;; User:ops;")
	if len(got) != 2 || got[0] != "User:admin" || got[1] != "User:ops" {
		t.Fatalf("ParseSuperUsers = %q", got)
	}
	if ParseSuperUsers("") != nil {
		t.Fatal("empty super.users gives users")
	}
}

func TestAuthorizerPrincipalMatching(t *testing.T) {
	a := NewAuthorizer(AuthorizerConfig{SuperUsers: []string{"User:ro:ot"}}, []Binding{
		allow(ResourceTopic, PatternLiteral, "t", "User:a:b", OpRead),
		allow(ResourceTopic, PatternLiteral, "t", "Group:alice", OpWrite),
	})
	if !a.Authorize(User("a:b"), "h", OpRead, ResourceTopic, "t") {
		t.Error("a principal whose name holds ':' does not match its ACL")
	}
	if a.Authorize(User("a"), "h", OpRead, ResourceTopic, "t") || a.Authorize(User("alice"), "h", OpWrite, ResourceTopic, "t") {
		t.Error("a principal matched another's ACL (a prefix of the name, or another type)")
	}
	if !a.IsSuperUser(User("ro:ot")) || a.IsSuperUser(User("ro")) {
		t.Error("super user parsing at the first ':'")
	}
}
