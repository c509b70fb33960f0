package api

import (
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/metadata"
)

func incrementalOp(name string, op kmsg.IncrementalAlterConfigOp, value *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	return kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: name, Op: op, Value: value}
}

func incrementalAlter(t *testing.T, h *harness, v int16, validateOnly bool, resources ...kmsg.IncrementalAlterConfigsRequestResource) []kmsg.IncrementalAlterConfigsResponseResource {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Version, req.ValidateOnly, req.Resources = v, validateOnly, resources
	resp := h.do(req).(*kmsg.IncrementalAlterConfigsResponse)
	if len(resp.Resources) != len(resources) {
		t.Fatalf("v%d: %d results for %d resources", v, len(resp.Resources), len(resources))
	}
	return resp.Resources
}

func TestIncrementalAlterConfigsOps(t *testing.T) {
	h := newAdminHarness(t, Config{})
	adminCreate(t, h, "t", 1, "segment.ms", "2000")
	topic := func(ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsRequestResource {
		return kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "t", Configs: ops}
	}
	overrides := func() map[string]string { return h.cp.Image().Configs(metadata.ConfigResourceTopic, "t") }
	steps := []struct {
		v    int16
		ops  []kmsg.IncrementalAlterConfigsRequestResourceConfig
		want map[string]string
	}{
		// v0: set one key; the others stay.
		{0, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incrementalOp("retention.ms", kmsg.IncrementalAlterConfigOpSet, adminPtr("100"))},
			map[string]string{"segment.ms": "2000", "retention.ms": "100"}},
		// Append to a list starts from its default (delete).
		{1, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incrementalOp("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, adminPtr("compact"))},
			map[string]string{"segment.ms": "2000", "retention.ms": "100", "cleanup.policy": "delete,compact"}},
		{1, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incrementalOp("cleanup.policy", kmsg.IncrementalAlterConfigOpSubtract, adminPtr("delete"))},
			map[string]string{"segment.ms": "2000", "retention.ms": "100", "cleanup.policy": "compact"}},
		// Delete takes no value (null is fine) and reverts to the default.
		{1, []kmsg.IncrementalAlterConfigsRequestResourceConfig{incrementalOp("segment.ms", kmsg.IncrementalAlterConfigOpDelete, nil)},
			map[string]string{"retention.ms": "100", "cleanup.policy": "compact"}},
	}
	for i, s := range steps {
		res := incrementalAlter(t, h, s.v, false, topic(s.ops...))
		adminWantCode(t, "step", res[0].ErrorCode, nil)
		if got := overrides(); !maps.Equal(got, s.want) {
			t.Fatalf("step %d: overrides %v, want %v", i, got, s.want)
		}
	}

	// validate_only checks without applying.
	res := incrementalAlter(t, h, 1, true, topic(incrementalOp("retention.ms", kmsg.IncrementalAlterConfigOpSet, adminPtr("5"))))
	adminWantCode(t, "validate only", res[0].ErrorCode, nil)
	if overrides()["retention.ms"] != "100" {
		t.Fatal("validate_only applied")
	}

	res = incrementalAlter(t, h, 1, false,
		topic(incrementalOp("retention.ms", kmsg.IncrementalAlterConfigOpSet, nil)),
		kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "missing",
			Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{incrementalOp("retention.ms", kmsg.IncrementalAlterConfigOpSet, adminPtr("1"))}},
		kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "",
			Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{incrementalOp("log.retention.ms", kmsg.IncrementalAlterConfigOpSet, adminPtr("-7"))}},
		kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "3",
			Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{incrementalOp("log.retention.ms", kmsg.IncrementalAlterConfigOpSet, adminPtr("1"))}},
		kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1",
			Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{incrementalOp("log.retention.ms", 9, adminPtr("1"))}},
		kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBrokerLogger, ResourceName: "1",
			Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{incrementalOp("root", kmsg.IncrementalAlterConfigOpSet, adminPtr("DEBUG"))}},
	)
	want := []*kerr.Error{kerr.InvalidRequest, kerr.UnknownTopicOrPartition, kerr.InvalidConfig, kerr.InvalidRequest, kerr.InvalidRequest, kerr.InvalidRequest}
	for i, w := range want {
		adminWantCode(t, res[i].ResourceName, res[i].ErrorCode, w)
		if res[i].ErrorMessage == nil {
			t.Fatalf("%s: no message", res[i].ResourceName)
		}
	}
	if overrides()["retention.ms"] != "100" {
		t.Fatal("a rejected change was applied")
	}
}
