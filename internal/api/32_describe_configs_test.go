package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/config"
)

func describeConfigs(t *testing.T, h *harness, v int16, synonyms, docs bool, resources ...kmsg.DescribeConfigsRequestResource) []kmsg.DescribeConfigsResponseResource {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version, req.IncludeSynonyms, req.IncludeDocumentation, req.Resources = v, synonyms, docs, resources
	resp := h.do(req).(*kmsg.DescribeConfigsResponse)
	if len(resp.Resources) != len(resources) {
		t.Fatalf("v%d: %d results for %d resources", v, len(resp.Resources), len(resources))
	}
	return resp.Resources
}

func describeTopic(name string, keys ...string) kmsg.DescribeConfigsRequestResource {
	return kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: name, ConfigNames: keys}
}

func describeBroker(name string, keys ...string) kmsg.DescribeConfigsRequestResource {
	return kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: name, ConfigNames: keys}
}

func describeByName(res kmsg.DescribeConfigsResponseResource) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	m := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range res.Configs {
		m[c.Name] = c
	}
	return m
}

func describeWant(t *testing.T, c kmsg.DescribeConfigsResponseResourceConfig, value string, source kmsg.ConfigSource) {
	t.Helper()
	if c.Value == nil || *c.Value != value || c.Source != source {
		var got string
		if c.Value != nil {
			got = *c.Value
		}
		t.Fatalf("%s = %q from %v, want %q from %v", c.Name, got, c.Source, value, source)
	}
}

// A topic's configs resolve override > dynamic cluster default > static
// broker config > built-in default, and synonyms list that chain.
func TestDescribeConfigsTopicSources(t *testing.T) {
	h := newAdminHarness(t, Config{
		Static:        map[string]string{"log.segment.bytes": "2048", "log.roll.ms": "1000", "log.retention.ms": "604800000"},
		StaticSources: map[string]config.Source{"log.segment.bytes": config.SourceFile, "log.retention.ms": config.SourceDefault},
	})
	adminCreate(t, h, "t", 1, "retention.ms", "5000")
	alter := kmsg.NewPtrIncrementalAlterConfigsRequest()
	alter.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "log.retention.ms", Value: adminPtr("7000")}, {Name: "log.cleanup.policy", Value: adminPtr("compact")}}}}
	if r := h.do(alter).(*kmsg.IncrementalAlterConfigsResponse); r.Resources[0].ErrorCode != 0 {
		t.Fatalf("set cluster defaults: %+v", r.Resources[0])
	}

	for _, v := range []int16{1, 2, 3, 4} {
		res := describeConfigs(t, h, v, true, v >= 3, describeTopic("t"))[0]
		adminWantCode(t, "describe t", res.ErrorCode, nil)
		if len(res.Configs) != len(config.TopicConfigs) {
			t.Fatalf("v%d: %d configs, want %d", v, len(res.Configs), len(config.TopicConfigs))
		}
		m := describeByName(res)
		describeWant(t, m["retention.ms"], "5000", kmsg.ConfigSourceDynamicTopicConfig)
		describeWant(t, m["cleanup.policy"], "compact", kmsg.ConfigSourceDynamicDefaultBrokerConfig)
		describeWant(t, m["segment.bytes"], "2048", kmsg.ConfigSourceStaticBrokerConfig)
		describeWant(t, m["segment.ms"], "1000", kmsg.ConfigSourceStaticBrokerConfig) // no StaticSources entry: static
		describeWant(t, m["min.insync.replicas"], "1", kmsg.ConfigSourceDefaultConfig)

		syn := m["retention.ms"].ConfigSynonyms
		wantSyn := []struct {
			name, value string
			source      kmsg.ConfigSource
		}{
			{"retention.ms", "5000", kmsg.ConfigSourceDynamicTopicConfig},
			{"log.retention.ms", "7000", kmsg.ConfigSourceDynamicDefaultBrokerConfig},
			// The static value the node filled in is the default: once.
			{"log.retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig},
		}
		if len(syn) != len(wantSyn) {
			t.Fatalf("v%d retention.ms synonyms %+v", v, syn)
		}
		for i, w := range wantSyn {
			if syn[i].Name != w.name || *syn[i].Value != w.value || syn[i].Source != w.source {
				t.Fatalf("v%d synonym %d: %s=%s from %v, want %+v", v, i, syn[i].Name, *syn[i].Value, syn[i].Source, w)
			}
		}
		c := m["segment.bytes"]
		if v >= 3 && (c.ConfigType != kmsg.ConfigTypeInt || c.Documentation == nil || *c.Documentation == "") {
			t.Fatalf("v%d segment.bytes type %v doc %v", v, c.ConfigType, c.Documentation)
		}
		if c.ReadOnly || c.IsSensitive {
			t.Fatalf("v%d segment.bytes read-only %v sensitive %v", v, c.ReadOnly, c.IsSensitive)
		}
	}

	// Without include_synonyms, none; without include_documentation, none.
	c := describeByName(describeConfigs(t, h, 4, false, false, describeTopic("t"))[0])["retention.ms"]
	if len(c.ConfigSynonyms) != 0 || c.Documentation != nil {
		t.Fatalf("unrequested synonyms/doc: %+v", c)
	}

	// v0: is_default instead of a source.
	m := describeByName(describeConfigs(t, h, 0, false, false, describeTopic("t"))[0])
	if m["retention.ms"].IsDefault || !m["min.insync.replicas"].IsDefault || !m["cleanup.policy"].IsDefault {
		t.Fatalf("v0 is_default: retention.ms %v, min.insync.replicas %v", m["retention.ms"].IsDefault, m["min.insync.replicas"].IsDefault)
	}
}

func TestDescribeConfigsRequestedKeysAndErrors(t *testing.T) {
	h := newAdminHarness(t, Config{})
	adminCreate(t, h, "t", 1)
	res := describeConfigs(t, h, 4, false, false,
		describeTopic("t", "retention.ms", "no.such.key", "segment.bytes"),
		describeTopic("missing"),
		describeTopic("bad name"),
		describeBroker("2"),
		describeBroker("x"),
		kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBrokerLogger, ResourceName: "1"},
		kmsg.DescribeConfigsRequestResource{ResourceType: 99, ResourceName: "z"},
	)
	if len(res[0].Configs) != 2 || res[0].Configs[0].Name != "retention.ms" || res[0].Configs[1].Name != "segment.bytes" {
		t.Fatalf("requested keys: %+v", res[0].Configs)
	}
	want := []*kerr.Error{nil, kerr.UnknownTopicOrPartition, kerr.InvalidTopicException, kerr.InvalidRequest, kerr.InvalidRequest, kerr.InvalidRequest, kerr.InvalidRequest}
	for i, w := range want {
		adminWantCode(t, res[i].ResourceName, res[i].ErrorCode, w)
		if w != nil && (res[i].ErrorMessage == nil || len(res[i].Configs) != 0) {
			t.Fatalf("%s: message %v, configs %d", res[i].ResourceName, res[i].ErrorMessage, len(res[i].Configs))
		}
	}
	if res[3].ResourceType != kmsg.ConfigResourceTypeBroker || res[3].ResourceName != "2" {
		t.Fatalf("resource not echoed: %+v", res[3])
	}
}

func TestDescribeConfigsBroker(t *testing.T) {
	h := newAdminHarness(t, Config{
		Static: map[string]string{"node.id": "1", "log.retention.ms": "1000", "sasl.jaas.config": "secret stuff"},
	})
	alter := kmsg.NewPtrAlterConfigsRequest()
	alter.Resources = []kmsg.AlterConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "", Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "log.retention.ms", Value: adminPtr("2000")}}},
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1", Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "log.retention.ms", Value: adminPtr("3000")}}},
	}
	for _, r := range h.do(alter).(*kmsg.AlterConfigsResponse).Resources {
		adminWantCode(t, "alter broker "+r.ResourceName, r.ErrorCode, nil)
	}

	for _, v := range []int16{0, 1, 4} {
		res := describeConfigs(t, h, v, true, false, describeBroker("1"), describeBroker(""))
		adminWantCode(t, "broker 1", res[0].ErrorCode, nil)
		adminWantCode(t, "broker \"\"", res[1].ErrorCode, nil)
		m := describeByName(res[0])
		if v >= 1 {
			describeWant(t, m["node.id"], "1", kmsg.ConfigSourceStaticBrokerConfig)
			describeWant(t, m["log.retention.ms"], "3000", kmsg.ConfigSourceDynamicBrokerConfig)
			describeWant(t, m["log.segment.bytes"], "1073741824", kmsg.ConfigSourceDefaultConfig)
			if n := len(m["log.retention.ms"].ConfigSynonyms); n != 4 {
				t.Fatalf("v%d log.retention.ms has %d synonyms, want 4 (broker, cluster, static, default)", v, n)
			}
		}
		if !m["node.id"].ReadOnly || m["log.retention.ms"].ReadOnly {
			t.Fatalf("v%d read-only: node.id %v, log.retention.ms %v", v, m["node.id"].ReadOnly, m["log.retention.ms"].ReadOnly)
		}
		if jaas := m["sasl.jaas.config"]; !jaas.IsSensitive || jaas.Value != nil {
			t.Fatalf("v%d sasl.jaas.config not hidden: %+v", v, jaas)
		}
		if v == 0 && (m["node.id"].IsDefault || !m["log.segment.bytes"].IsDefault) {
			t.Fatalf("v0 is_default wrong")
		}
		// "" is the cluster-wide dynamic defaults only.
		if len(res[1].Configs) != 1 || res[1].Configs[0].Name != "log.retention.ms" || *res[1].Configs[0].Value != "2000" {
			t.Fatalf("v%d cluster defaults %+v", v, res[1].Configs)
		}
		if v >= 1 && res[1].Configs[0].Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
			t.Fatalf("v%d cluster default source %v", v, res[1].Configs[0].Source)
		}
	}
}
