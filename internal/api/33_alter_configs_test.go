package api

import (
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/metadata"
)

func alterConfigsResource(typ kmsg.ConfigResourceType, name string, kv ...string) kmsg.AlterConfigsRequestResource {
	res := kmsg.AlterConfigsRequestResource{ResourceType: typ, ResourceName: name}
	for i := 0; i+1 < len(kv); i += 2 {
		res.Configs = append(res.Configs, kmsg.AlterConfigsRequestResourceConfig{Name: kv[i], Value: adminPtr(kv[i+1])})
	}
	return res
}

func alterConfigs(t *testing.T, h *harness, v int16, validateOnly bool, resources ...kmsg.AlterConfigsRequestResource) []kmsg.AlterConfigsResponseResource {
	t.Helper()
	req := kmsg.NewPtrAlterConfigsRequest()
	req.Version, req.ValidateOnly, req.Resources = v, validateOnly, resources
	resp := h.do(req).(*kmsg.AlterConfigsResponse)
	if len(resp.Resources) != len(resources) {
		t.Fatalf("v%d: %d results for %d resources", v, len(resp.Resources), len(resources))
	}
	for i, r := range resp.Resources {
		if r.ResourceType != resources[i].ResourceType || r.ResourceName != resources[i].ResourceName {
			t.Fatalf("result %d is for %v %q", i, r.ResourceType, r.ResourceName)
		}
	}
	return resp.Resources
}

func TestAlterConfigsReplacesTheSet(t *testing.T) {
	h := newAdminHarness(t, Config{})
	adminCreate(t, h, "t", 1, "retention.ms", "1000", "segment.ms", "2000")
	topic := kmsg.ConfigResourceTypeTopic
	for _, v := range []int16{0, 2} {
		value := map[int16]string{0: "3000", 2: "4000"}[v]
		res := alterConfigs(t, h, v, false, alterConfigsResource(topic, "t", "retention.ms", value))
		adminWantCode(t, "alter t", res[0].ErrorCode, nil)
		// The set replaces the old one: segment.ms reverts to its default.
		if got := h.cp.Image().Configs(metadata.ConfigResourceTopic, "t"); !maps.Equal(got, map[string]string{"retention.ms": value}) {
			t.Fatalf("v%d overrides %v", v, got)
		}
	}

	// validate_only checks without applying.
	res := alterConfigs(t, h, 1, true, alterConfigsResource(topic, "t", "retention.ms", "9"))
	adminWantCode(t, "validate only", res[0].ErrorCode, nil)
	if got := h.cp.Image().Configs(metadata.ConfigResourceTopic, "t")["retention.ms"]; got != "4000" {
		t.Fatalf("validate_only applied: retention.ms=%s", got)
	}

	// The cluster-wide default, through the broker resource.
	res = alterConfigs(t, h, 2, false, alterConfigsResource(kmsg.ConfigResourceTypeBroker, "", "log.retention.ms", "5000"))
	adminWantCode(t, "cluster default", res[0].ErrorCode, nil)
	if got := h.cp.Image().Configs(metadata.ConfigResourceBroker, "")["log.retention.ms"]; got != "5000" {
		t.Fatalf("cluster default log.retention.ms=%q", got)
	}
}

func TestAlterConfigsErrors(t *testing.T) {
	h := newAdminHarness(t, Config{})
	adminCreate(t, h, "t", 1)
	adminCreate(t, h, "u", 1)
	adminCreate(t, h, "p", 1)
	topic, broker := kmsg.ConfigResourceTypeTopic, kmsg.ConfigResourceTypeBroker
	nullValue := alterConfigsResource(topic, "u")
	nullValue.Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms"}}
	cases := []struct {
		res  kmsg.AlterConfigsRequestResource
		want *kerr.Error
	}{
		{alterConfigsResource(topic, "t", "retention.ms", "soon"), kerr.InvalidConfig},
		{alterConfigsResource(topic, "p", "preallocate", "true"), kerr.InvalidConfig},
		{alterConfigsResource(topic, "missing", "retention.ms", "1"), kerr.UnknownTopicOrPartition},
		{alterConfigsResource(broker, "2", "log.retention.ms", "1"), kerr.InvalidRequest},
		{alterConfigsResource(broker, "one", "log.retention.ms", "1"), kerr.InvalidRequest},
		{alterConfigsResource(broker, "1", "node.id", "5"), kerr.InvalidConfig},
		{alterConfigsResource(kmsg.ConfigResourceTypeBrokerLogger, "1", "root", "DEBUG"), kerr.InvalidRequest},
		{nullValue, kerr.InvalidRequest},
		{alterConfigsResource(topic, "dup", "retention.ms", "1"), kerr.InvalidRequest},
		{alterConfigsResource(topic, "dup", "retention.ms", "2"), kerr.InvalidRequest},
		{alterConfigsResource(broker, "", "log.retention.ms", "6000"), nil},
	}
	var resources []kmsg.AlterConfigsRequestResource
	for _, c := range cases {
		resources = append(resources, c.res)
	}
	res := alterConfigs(t, h, 1, false, resources...)
	for i, c := range cases {
		adminWantCode(t, res[i].ResourceName, res[i].ErrorCode, c.want)
		if (res[i].ErrorMessage != nil) != (c.want != nil) {
			t.Fatalf("%s: message %v", res[i].ResourceName, res[i].ErrorMessage)
		}
	}
	if len(h.cp.Image().Configs(metadata.ConfigResourceTopic, "t")) != 0 {
		t.Fatal("a rejected change was applied")
	}
	if got := h.cp.Image().Configs(metadata.ConfigResourceBroker, "")["log.retention.ms"]; got != "6000" {
		t.Fatalf("cluster default log.retention.ms=%q", got)
	}
	// The same resource twice fails every copy.
	res = alterConfigs(t, h, 0, false,
		alterConfigsResource(broker, "1", "log.retention.ms", "1"), alterConfigsResource(broker, "1", "log.retention.ms", "2"))
	adminWantCode(t, "dup broker 1", res[0].ErrorCode, kerr.InvalidRequest)
	adminWantCode(t, "dup broker 1", res[1].ErrorCode, kerr.InvalidRequest)
}
