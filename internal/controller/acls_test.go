package controller

import (
	"testing"

	"github.com/sluicelog/sluice/internal/auth"
)

func aclBinding(name string, pt auth.PatternType, op auth.Operation) auth.Binding {
	return auth.Binding{ResourceType: auth.ResourceTopic, ResourceName: name, PatternType: pt,
		Principal: "User:alice", Host: "*", Operation: op, Permission: auth.PermissionAllow}
}

func TestControllerCreateACLs(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	a := aclBinding("orders", auth.PatternLiteral, auth.OpRead)
	bad := aclBinding("x", auth.PatternMatch, auth.OpRead)
	recs, resp := cl.c.CreateACLs(cl.img, CreateACLsRequest{Bindings: []auth.Binding{a, bad, a}})
	requireErr(t, resp.Results[0], nil)
	requireErr(t, resp.Results[1], ErrInvalidRequest)
	requireErr(t, resp.Results[2], nil)
	if len(recs) != 1 {
		t.Fatalf("%d records for one new ACL given twice, want 1", len(recs))
	}
	cl.apply(recs)
	if acls := cl.img.ACLs(); len(acls) != 1 || acls[0].Binding != a || acls[0].ID != ACLID(a) {
		t.Fatalf("image ACLs %+v", acls)
	}
	// Creating it again succeeds and emits nothing.
	recs, resp = cl.c.CreateACLs(cl.img, CreateACLsRequest{Bindings: []auth.Binding{a}})
	requireErr(t, resp.Results[0], nil)
	if len(recs) != 0 {
		t.Fatalf("re-creating an ACL emitted %d records", len(recs))
	}
}

func TestControllerDeleteACLs(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	lit := aclBinding("orders", auth.PatternLiteral, auth.OpRead)
	pre := aclBinding("ord", auth.PatternPrefixed, auth.OpWrite)
	other := aclBinding("logs", auth.PatternLiteral, auth.OpRead)
	recs, _ := cl.c.CreateACLs(cl.img, CreateACLsRequest{Bindings: []auth.Binding{lit, pre, other}})
	cl.apply(recs)

	match := auth.Filter{ResourceType: auth.ResourceTopic, ResourceName: "orders", PatternType: auth.PatternMatch,
		Operation: auth.OpAny, Permission: auth.PermissionAny}
	reads := auth.Filter{ResourceType: auth.ResourceAny, PatternType: auth.PatternLiteral,
		Operation: auth.OpRead, Permission: auth.PermissionAny, ResourceName: "orders"}
	invalid := auth.Filter{ResourceType: auth.ResourceUnknown}
	recs, resp := cl.c.DeleteACLs(cl.img, DeleteACLsRequest{Filters: []auth.Filter{match, reads, invalid}})
	if got := resp.Results[0].Deleted; len(got) != 2 {
		t.Errorf("MATCH orders deleted %v, want the literal and the prefix", got)
	}
	if got := resp.Results[1].Deleted; len(got) != 1 || got[0] != lit {
		t.Errorf("literal READ filter deleted %v", got)
	}
	requireErr(t, resp.Results[2].Err, ErrInvalidRequest)
	if len(recs) != 2 {
		t.Fatalf("%d removal records, want 2 (one per ACL)", len(recs))
	}
	cl.apply(recs)
	if acls := cl.img.ACLs(); len(acls) != 1 || acls[0].Binding != other {
		t.Fatalf("ACLs left %+v, want only logs", acls)
	}
}
