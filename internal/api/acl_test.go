package api

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

func aclProduceCode(t *testing.T, h *harness, p auth.Principal, topic string) int16 {
	t.Helper()
	resp := h.doAs(p, dpProduceRequest(9, -1, topic, map[int32][]byte{0: dpBatch(t, "m", 1, dpBatchOptions{})})).(*kmsg.ProduceResponse)
	return resp.Topics[0].Partitions[0].ErrorCode
}

func aclWantCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Errorf("%s: %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
	}
}

func TestACLSuperUserAndDenyWins(t *testing.T) {
	h := newACLHarness(t)
	dpCreateTopic(t, h, "t", 1)
	aclWantCode(t, "super user without ACLs", aclProduceCode(t, h, aclAdmin, "t"), 0)

	aclCreate(t, h, aclAllow(auth.ResourceTopic, "t", auth.OpWrite))
	aclWantCode(t, "alice allowed", aclProduceCode(t, h, aclAlice, "t"), 0)
	aclWantCode(t, "bob with no ACL", aclProduceCode(t, h, auth.User("bob"), "t"), topicAuthz)

	// A DENY for every principal wins over alice's ALLOW, but not over a
	// super user.
	aclCreate(t, h, auth.Binding{ResourceType: auth.ResourceTopic, ResourceName: "*", PatternType: auth.PatternLiteral,
		Principal: auth.WildcardPrincipal, Host: "*", Operation: auth.OpWrite, Permission: auth.PermissionDeny})
	aclWantCode(t, "alice allowed and denied", aclProduceCode(t, h, aclAlice, "t"), topicAuthz)
	aclWantCode(t, "super user denied by ACL", aclProduceCode(t, h, aclAdmin, "t"), 0)
}

func TestACLPrefixedAndHost(t *testing.T) {
	h := newACLHarness(t)
	dpCreateTopic(t, h, "logs-app", 1)
	dpCreateTopic(t, h, "other", 1)
	aclCreate(t, h, auth.Binding{ResourceType: auth.ResourceTopic, ResourceName: "logs-", PatternType: auth.PatternPrefixed,
		Principal: aclAlice.String(), Host: "127.0.0.1", Operation: auth.OpWrite, Permission: auth.PermissionAllow})
	aclWantCode(t, "prefixed match", aclProduceCode(t, h, aclAlice, "logs-app"), 0)
	aclWantCode(t, "no prefix", aclProduceCode(t, h, aclAlice, "other"), topicAuthz)

	aclDeleteAll(t, h)
	aclCreate(t, h, auth.Binding{ResourceType: auth.ResourceTopic, ResourceName: "logs-", PatternType: auth.PatternPrefixed,
		Principal: aclAlice.String(), Host: "10.9.9.9", Operation: auth.OpWrite, Permission: auth.PermissionAllow})
	aclWantCode(t, "other host", aclProduceCode(t, h, aclAlice, "logs-app"), topicAuthz)
}

func TestACLMetadataHidesTopicsAndAutoCreateNeedsCreate(t *testing.T) {
	h := newACLHarness(t)
	h.broker.Config.AutoCreateTopicsEnable = true
	dpCreateTopic(t, h, "seen", 1)
	dpCreateTopic(t, h, "hidden", 1)
	autoPrefix := aclAllow(auth.ResourceTopic, "auto-", auth.OpDescribe)
	autoPrefix.PatternType = auth.PatternPrefixed
	aclCreate(t, h, aclAllow(auth.ResourceTopic, "seen", auth.OpDescribe), autoPrefix)

	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	resp := h.doAs(aclAlice, req).(*kmsg.MetadataResponse)
	if len(resp.Topics) != 1 || *resp.Topics[0].Topic != "seen" {
		t.Fatalf("all-topics metadata as alice lists %+v, want only seen", resp.Topics)
	}

	// Asked by name: a hidden topic and a missing one look the same.
	for _, name := range []string{"hidden", "no-such-topic"} {
		req := kmsg.NewPtrMetadataRequest()
		req.Version, req.AllowAutoTopicCreation = 12, true
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: aclStr(name)}}
		resp := h.doAs(aclAlice, req).(*kmsg.MetadataResponse)
		aclWantCode(t, "metadata "+name, resp.Topics[0].ErrorCode, topicAuthz)
	}
	if _, ok := h.cp.Image().Topic("no-such-topic"); ok {
		t.Fatal("metadata auto-created a topic alice may not describe")
	}

	// DESCRIBE without CREATE: no auto-creation.
	autoReq := func() *kmsg.MetadataRequest {
		req := kmsg.NewPtrMetadataRequest()
		req.Version, req.AllowAutoTopicCreation = 12, true
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: aclStr("auto-x")}}
		return req
	}
	resp = h.doAs(aclAlice, autoReq()).(*kmsg.MetadataResponse)
	aclWantCode(t, "auto-create without CREATE", resp.Topics[0].ErrorCode, topicAuthz)
	if _, ok := h.cp.Image().Topic("auto-x"); ok {
		t.Fatal("auto-created without CREATE")
	}
	aclCreate(t, h, aclAllow(auth.ResourceCluster, auth.ClusterName, auth.OpCreate))
	resp = h.doAs(aclAlice, autoReq()).(*kmsg.MetadataResponse)
	if code := resp.Topics[0].ErrorCode; code != 0 && code != kerr.LeaderNotAvailable.Code {
		t.Fatalf("auto-create with CREATE on the cluster: %v", kerr.ErrorForCode(code))
	}
	if _, ok := h.cp.Image().Topic("auto-x"); !ok {
		t.Fatal("not auto-created with CREATE on the cluster")
	}
}

func TestACLAllowEveryoneIfNoACLFound(t *testing.T) {
	h := newACLHarness(t)
	h.broker.Config.Authorizer.AllowEveryoneIfNoACL = true
	dpCreateTopic(t, h, "open", 1)
	dpCreateTopic(t, h, "guarded", 1)
	aclCreate(t, h, auth.Binding{ResourceType: auth.ResourceTopic, ResourceName: "guarded", PatternType: auth.PatternLiteral,
		Principal: "User:bob", Host: "*", Operation: auth.OpWrite, Permission: auth.PermissionAllow})
	aclWantCode(t, "topic no ACL names", aclProduceCode(t, h, aclAlice, "open"), 0)
	aclWantCode(t, "topic with ACLs for bob", aclProduceCode(t, h, aclAlice, "guarded"), topicAuthz)
}

// TestACLAPIsRoundTrip creates, describes and deletes ACLs through the
// handlers, as a super user, including a request with an invalid binding
// next to a valid one.
func TestACLAPIsRoundTrip(t *testing.T) {
	h := newACLHarness(t)
	create := kmsg.NewPtrCreateACLsRequest()
	create.Version = 2
	for _, c := range []struct {
		name    string
		pattern kmsg.ACLResourcePatternType
		op      kmsg.ACLOperation
	}{{"orders", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationRead}, {"ord", kmsg.ACLResourcePatternTypePrefixed, kmsg.ACLOperationWrite},
		{"bad", kmsg.ACLResourcePatternTypeMatch, kmsg.ACLOperationRead}} {
		cr := kmsg.NewCreateACLsRequestCreation()
		cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, c.name, c.pattern
		cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:alice", "*", c.op, kmsg.ACLPermissionTypeAllow
		create.Creations = append(create.Creations, cr)
	}
	cresp := h.doAs(aclAdmin, create).(*kmsg.CreateACLsResponse)
	aclWantCode(t, "create literal", cresp.Results[0].ErrorCode, 0)
	aclWantCode(t, "create prefixed", cresp.Results[1].ErrorCode, 0)
	aclWantCode(t, "create MATCH", cresp.Results[2].ErrorCode, kerr.InvalidRequest.Code)

	describe := kmsg.NewPtrDescribeACLsRequest()
	describe.Version = 1
	describe.ResourceType, describe.ResourceName, describe.ResourcePatternType = kmsg.ACLResourceTypeTopic, aclStr("orders"), kmsg.ACLResourcePatternTypeMatch
	describe.Operation, describe.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	dresp := h.doAs(aclAdmin, describe).(*kmsg.DescribeACLsResponse)
	if dresp.ErrorCode != 0 || len(dresp.Resources) != 2 {
		t.Fatalf("describe MATCH orders: %v %+v", kerr.ErrorForCode(dresp.ErrorCode), dresp.Resources)
	}

	del := kmsg.NewPtrDeleteACLsRequest()
	del.Version = 3
	f := kmsg.NewDeleteACLsRequestFilter()
	f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.ACLResourcePatternTypePrefixed
	f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	del.Filters = append(del.Filters, f)
	delResp := h.doAs(aclAdmin, del).(*kmsg.DeleteACLsResponse)
	if r := delResp.Results[0]; r.ErrorCode != 0 || len(r.MatchingACLs) != 1 || r.MatchingACLs[0].ResourceName != "ord" {
		t.Fatalf("delete prefixed: %+v", r)
	}
	if acls := h.cp.Image().ACLBindings(); len(acls) != 1 || acls[0].ResourceName != "orders" {
		t.Fatalf("ACLs left %v, want only orders", acls)
	}
}

func TestACLAPIsWithoutAuthorizer(t *testing.T) {
	h := newHarness(t, Config{})
	describe := kmsg.NewPtrDescribeACLsRequest()
	describe.Version = 3
	describe.ResourceType, describe.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	describe.Operation, describe.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	aclWantCode(t, "describe", h.do(describe).(*kmsg.DescribeACLsResponse).ErrorCode, kerr.SecurityDisabled.Code)
	create := kmsg.NewPtrCreateACLsRequest()
	create.Creations = []kmsg.CreateACLsRequestCreation{kmsg.NewCreateACLsRequestCreation()}
	aclWantCode(t, "create", h.do(create).(*kmsg.CreateACLsResponse).Results[0].ErrorCode, kerr.SecurityDisabled.Code)
}

// BenchmarkAuthorizeRequest is what authorization adds to each produced
// or fetched topic of a request: the per-request context (the cached
// authorizer of the current image, the client's host) and one check,
// against 1,000 ACLs.
func BenchmarkAuthorizeRequest(b *testing.B) {
	h := newHarness(b, Config{})
	h.broker.Config.Authorizer = &auth.AuthorizerConfig{SuperUsers: []string{"User:admin"}}
	var bindings []auth.Binding
	for i := range 1000 {
		bindings = append(bindings, aclAllow(auth.ResourceTopic, fmt.Sprintf("topic-%d", i), auth.OpWrite))
	}
	aclCreate(b, h, bindings...)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r := &Request{ClientAddr: "10.0.0.1:53211", Principal: aclAlice}
		if err := h.broker.authz(r).topic(auth.OpWrite, "topic-500"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestACLAuthorizedOperations(t *testing.T) {
	h := newACLHarness(t)
	dpCreateTopic(t, h, "t", 1)
	aclCreate(t, h, aclAllow(auth.ResourceTopic, "t", auth.OpRead), aclAllow(auth.ResourceCluster, auth.ClusterName, auth.OpDescribe))
	req := kmsg.NewPtrMetadataRequest()
	req.Version, req.IncludeTopicAuthorizedOperations, req.IncludeClusterAuthorizedOperations = 10, true, true
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: aclStr("t")}}
	resp := h.doAs(aclAlice, req).(*kmsg.MetadataResponse)
	if want := int32(1<<auth.OpRead | 1<<auth.OpDescribe); resp.Topics[0].AuthorizedOperations != want {
		t.Errorf("topic authorized operations %b, want %b (READ and the DESCRIBE it implies)", resp.Topics[0].AuthorizedOperations, want)
	}
	if want := int32(1 << auth.OpDescribe); resp.AuthorizedOperations != want {
		t.Errorf("cluster authorized operations %b, want %b", resp.AuthorizedOperations, want)
	}
	if got := h.doAs(aclAdmin, req).(*kmsg.MetadataResponse).Topics[0].AuthorizedOperations; got != topicAllOperations {
		t.Errorf("super user's topic operations %b, want all %b", got, topicAllOperations)
	}
}

func TestACLCreateTopicsWithholdsConfigs(t *testing.T) {
	h := newACLHarness(t)
	aclCreate(t, h, aclAllow(auth.ResourceTopic, "made", auth.OpCreate))
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version, req.TimeoutMillis = 7, 10_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "made", 1, 1
	req.Topics = append(req.Topics, rt)
	out := h.doAs(aclAlice, req).(*kmsg.CreateTopicsResponse).Topics[0]
	if out.ErrorCode != 0 || out.ConfigErrorCode != topicAuthz || len(out.Configs) != 0 {
		t.Fatalf("create without DESCRIBE_CONFIGS: error %v, config error %v, %d configs; want created, configs withheld",
			kerr.ErrorForCode(out.ErrorCode), kerr.ErrorForCode(out.ConfigErrorCode), len(out.Configs))
	}
}

// TestACLAPIsVersion0 checks the versions without a pattern type: v0
// means LITERAL, both in a creation and in a filter.
func TestACLAPIsVersion0(t *testing.T) {
	h := newACLHarness(t)
	create := kmsg.NewPtrCreateACLsRequest()
	create.Version = 0
	cr := kmsg.NewCreateACLsRequestCreation()
	cr.ResourceType, cr.ResourceName = kmsg.ACLResourceTypeTopic, "orders"
	cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:alice", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
	create.Creations = append(create.Creations, cr)
	aclWantCode(t, "create v0", h.doAs(aclAdmin, create).(*kmsg.CreateACLsResponse).Results[0].ErrorCode, 0)
	if acls := h.cp.Image().ACLBindings(); len(acls) != 1 || acls[0].PatternType != auth.PatternLiteral {
		t.Fatalf("v0 creation stored %v, want one LITERAL ACL", acls)
	}
	describe := kmsg.NewPtrDescribeACLsRequest()
	describe.Version = 0
	describe.ResourceType, describe.Operation, describe.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	resp := h.doAs(aclAdmin, describe).(*kmsg.DescribeACLsResponse)
	if resp.ErrorCode != 0 || len(resp.Resources) != 1 || resp.Resources[0].ResourceName != "orders" {
		t.Fatalf("describe v0: %v %+v", kerr.ErrorForCode(resp.ErrorCode), resp.Resources)
	}
}
