package api

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
)

// Helpers of the authorization tests (prefix acl).

var (
	aclAdmin = auth.User("admin") // in super.users
	aclAlice = auth.User("alice") // has only the ACLs a test gives her
)

// newACLHarness is a group harness with the authorizer on, User:admin a
// super user and no ACLs.
func newACLHarness(t *testing.T) *harness {
	t.Helper()
	h, _ := newTxnHarness(t)
	groupWaitCoordinator(t, h, "g") // before authorization, as User:ANONYMOUS
	// Transactional id tx exists, for ListTransactions to list it.
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version, init.TransactionalID, init.TransactionTimeoutMillis = 4, aclStr("tx"), 30_000
	if resp := txnEventually(t, h, init, func(r *kmsg.InitProducerIDResponse) int16 { return r.ErrorCode }); resp.ErrorCode != 0 {
		t.Fatalf("init producer id of tx: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	h.broker.Config.Authorizer = &auth.AuthorizerConfig{SuperUsers: []string{aclAdmin.String()}}
	return h
}

// doAs sends req as principal p, from 127.0.0.1.
func (h *harness) doAs(p auth.Principal, req kmsg.Request) kmsg.Response {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(auth.WithPrincipal(context.Background(), p), 30*time.Second)
	defer cancel()
	out, err := h.server.Serve(ctx, "127.0.0.1:1", h.frame(req))
	if err != nil {
		h.t.Fatalf("%s v%d as %s: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), p, err)
	}
	if out == nil {
		return nil
	}
	defer out.Release()
	var buf writeBuffer
	if _, err := out.WriteTo(&buf); err != nil {
		h.t.Fatal(err)
	}
	return h.decode(req, buf)
}

// aclAllow is an ALLOW for alice from any host.
func aclAllow(rt auth.ResourceType, name string, op auth.Operation) auth.Binding {
	return auth.Binding{ResourceType: rt, ResourceName: name, PatternType: auth.PatternLiteral,
		Principal: aclAlice.String(), Host: "*", Operation: op, Permission: auth.PermissionAllow}
}

// aclCreate stores bindings through the controller (not the handler, so
// setup does not depend on what is tested).
func aclCreate(t testing.TB, h *harness, bindings ...auth.Binding) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := h.cp.Submit(ctx, kraft.CreateACLs{Request: controller.CreateACLsRequest{Bindings: bindings}})
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range out.(controller.CreateACLsResponse).Results {
		if err != nil {
			t.Fatalf("create ACL %s: %v", bindings[i], err)
		}
	}
}

// aclDeleteAll removes every ACL.
func aclDeleteAll(t testing.TB, h *harness) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	any := auth.Filter{ResourceType: auth.ResourceAny, PatternType: auth.PatternAny, Operation: auth.OpAny, Permission: auth.PermissionAny}
	if _, err := h.cp.Submit(ctx, kraft.DeleteACLs{Request: controller.DeleteACLsRequest{Filters: []auth.Filter{any}}}); err != nil {
		t.Fatal(err)
	}
	if n := len(h.cp.Image().ACLs()); n != 0 {
		t.Fatalf("%d ACLs left", n)
	}
}

// aclCodes are the authorization error codes: an allowed request must
// carry none of them.
var aclCodes = []int16{kerr.TopicAuthorizationFailed.Code, kerr.GroupAuthorizationFailed.Code,
	kerr.ClusterAuthorizationFailed.Code, kerr.TransactionalIDAuthorizationFailed.Code, kerr.SecurityDisabled.Code}

// aclCase is one API against one resource: the request, the ACLs that
// allow it, the code it must get without them, and where to read that
// code in the response. effect, when set, reports whether the request did
// what it asks (a topic created, records appended): it must not have
// without the ACLs.
type aclCase struct {
	name   string
	req    func() kmsg.Request
	given  []auth.Binding // present in both runs: the other resources' ACLs
	acls   []auth.Binding
	denied int16
	code   func(kmsg.Response) int16
	effect func() bool
}

// TestACLMatrix runs every API the broker serves, against every resource
// it touches, as a principal without the ACLs it needs (every answer must
// be the authorization error: zero unauthorized successes) and again with
// them (no authorization error). A handler added without a case here
// fails the test.
func TestACLMatrix(t *testing.T) {
	h := newACLHarness(t)
	aclSetup(t, h)
	cases := aclMatrixCases(t, h)
	// ApiVersions (18), SaslHandshake (17) and SaslAuthenticate (36) are
	// answered before a connection has a principal: they need no ACL.
	covered := map[int16]bool{apiVersionsHandler.key: true, 17: true, 36: true}
	for _, c := range cases {
		covered[c.req().Key()] = true
	}
	for _, hd := range handlers {
		if !covered[hd.key] {
			t.Errorf("%s (key %d) has no case in the ACL matrix", kmsg.NameForKey(hd.key), hd.key)
		}
	}
	unauthorizedSuccesses := 0
	for _, c := range cases {
		aclDeleteAll(t, h)
		if len(c.given) > 0 {
			aclCreate(t, h, c.given...)
		}
		resp := h.doAs(aclAlice, c.req())
		if got := c.code(resp); got != c.denied {
			unauthorizedSuccesses++
			t.Errorf("%s without ACLs: %v, want %v", c.name, kerr.ErrorForCode(got), kerr.ErrorForCode(c.denied))
		}
		if c.effect != nil && c.effect() {
			unauthorizedSuccesses++
			t.Errorf("%s without ACLs took effect", c.name)
		}
		aclCreate(t, h, c.acls...)
		resp = h.doAs(aclAlice, c.req())
		if got := c.code(resp); slices.Contains(aclCodes, got) {
			t.Errorf("%s with ACLs %v: %v", c.name, c.acls, kerr.ErrorForCode(got))
		}
		if c.effect != nil && !c.effect() {
			t.Errorf("%s with ACLs took no effect", c.name)
		}
	}
	if unauthorizedSuccesses != 0 {
		t.Errorf("%d unauthorized successes over %d cases", unauthorizedSuccesses, len(cases))
	}
}

// aclSetup creates what the cases act on, as the controller and the super
// user: topics t (two partitions, records in partition 0), del and
// records, and group g with a committed offset.
func aclSetup(t *testing.T, h *harness) {
	t.Helper()
	dpCreateTopic(t, h, "t", 2)
	dpCreateTopic(t, h, "del", 1)
	dpCreateTopic(t, h, "records", 1)
	for _, topic := range []string{"t", "records"} {
		resp := h.doAs(aclAdmin, dpProduceRequest(9, -1, topic, map[int32][]byte{0: dpBatch(t, "setup", 3, dpBatchOptions{})})).(*kmsg.ProduceResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("setup produce to %s: %v", topic, kerr.ErrorForCode(code))
		}
	}
	commit := aclOffsetCommit()
	resp := h.doAs(aclAdmin, commit).(*kmsg.OffsetCommitResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("setup commit: %v", kerr.ErrorForCode(code))
	}
}
