package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/metadata"
)

func createTopicsRequest(v int16, validateOnly bool, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version, req.ValidateOnly, req.Topics = v, validateOnly, topics
	return req
}

func createTopicsTopic(name string, partitions int32, rf int16, configs ...string) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	for i := 0; i+1 < len(configs); i += 2 {
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: configs[i], Value: adminPtr(configs[i+1])})
	}
	return rt
}

func TestCreateTopicsOldAndNewVersions(t *testing.T) {
	h := newAdminHarness(t, Config{})
	// v0: bare success.
	resp := h.do(createTopicsRequest(0, false, createTopicsTopic("v0", 2, 1))).(*kmsg.CreateTopicsResponse)
	adminWantCode(t, "v0", resp.Topics[0].ErrorCode, nil)
	// v4: -1 takes the controller's defaults.
	resp = h.do(createTopicsRequest(4, false, createTopicsTopic("v4", -1, -1))).(*kmsg.CreateTopicsResponse)
	adminWantCode(t, "v4", resp.Topics[0].ErrorCode, nil)

	// v7: counts, configs and id.
	resp = h.do(createTopicsRequest(7, false, createTopicsTopic("v7", 3, 1, "retention.ms", "1234", "cleanup.policy", "compact"))).(*kmsg.CreateTopicsResponse)
	got := resp.Topics[0]
	adminWantCode(t, "v7", got.ErrorCode, nil)
	if got.NumPartitions != 3 || got.ReplicationFactor != 1 || got.TopicID == [16]byte{} || got.ErrorMessage != nil {
		t.Fatalf("v7 result %+v", got)
	}
	if len(got.Configs) != len(config.TopicConfigs) {
		t.Fatalf("v7 configs: %d, want %d", len(got.Configs), len(config.TopicConfigs))
	}
	byName := map[string]kmsg.CreateTopicsResponseTopicConfig{}
	for _, c := range got.Configs {
		byName[c.Name] = c
	}
	if c := byName["retention.ms"]; c.Value == nil || *c.Value != "1234" || c.Source != int8(kmsg.ConfigSourceDynamicTopicConfig) || c.ReadOnly || c.IsSensitive {
		t.Fatalf("retention.ms %+v", c)
	}
	if c := byName["segment.bytes"]; c.Value == nil || *c.Value != "1073741824" || c.Source != int8(kmsg.ConfigSourceDefaultConfig) {
		t.Fatalf("segment.bytes %+v", c)
	}

	img := h.cp.Image()
	for name, parts := range map[string]int{"v0": 2, "v4": 1, "v7": 3} {
		topic, ok := img.Topic(name)
		if !ok || len(topic.Partitions) != parts {
			t.Fatalf("topic %s: %v %+v", name, ok, topic)
		}
	}
	if topic, _ := img.Topic("v7"); topic.ID != got.TopicID {
		t.Fatal("v7 topic id differs from the image's")
	}
	if c := img.Configs(metadata.ConfigResourceTopic, "v7"); c["retention.ms"] != "1234" || c["cleanup.policy"] != "compact" {
		t.Fatalf("v7 overrides %v", c)
	}
}

func TestCreateTopicsValidateOnlyCreatesNothing(t *testing.T) {
	h := newAdminHarness(t, Config{})
	for _, v := range []int16{1, 5, 7} {
		resp := h.do(createTopicsRequest(v, true, createTopicsTopic("dry", 4, 1, "retention.ms", "99"))).(*kmsg.CreateTopicsResponse)
		got := resp.Topics[0]
		adminWantCode(t, "validate only", got.ErrorCode, nil)
		if v >= 5 && (got.NumPartitions != 4 || got.ReplicationFactor != 1 || len(got.Configs) == 0) {
			t.Fatalf("v%d validate-only counts %+v", v, got)
		}
		if got.TopicID != [16]byte{} {
			t.Fatalf("v%d validate-only got a topic id", v)
		}
	}
	if h.cp.Image().NumTopics() != 0 {
		t.Fatal("validate_only created a topic")
	}
	// A validate-only request still reports what would fail.
	resp := h.do(createTopicsRequest(1, true, createTopicsTopic("dry", 0, 1))).(*kmsg.CreateTopicsResponse)
	adminWantCode(t, "validate only, 0 partitions", resp.Topics[0].ErrorCode, kerr.InvalidPartitions)
}

func TestCreateTopicsErrors(t *testing.T) {
	h := newAdminHarness(t, Config{})
	adminCreate(t, h, "exists", 1)
	nullConfig := createTopicsTopic("nullconfig", 1, 1)
	nullConfig.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms"}}
	cases := []struct {
		topic kmsg.CreateTopicsRequestTopic
		want  *kerr.Error
	}{
		{createTopicsTopic("dup", 1, 1), kerr.InvalidRequest},
		{createTopicsTopic("dup", 1, 1, "retention.ms", "bad"), kerr.InvalidRequest},
		{createTopicsTopic("bad name", 1, 1), kerr.InvalidTopicException},
		{createTopicsTopic("exists", 1, 1), kerr.TopicAlreadyExists},
		{createTopicsTopic("badvalue", 1, 1, "retention.ms", "soon"), kerr.InvalidConfig},
		{createTopicsTopic("prealloc", 1, 1, "preallocate", "true"), kerr.InvalidConfig},
		{createTopicsTopic("unknownkey", 1, 1, "no.such.config", "1"), kerr.InvalidConfig},
		{nullConfig, kerr.InvalidConfig},
		{createTopicsTopic("zero", 0, 1), kerr.InvalidPartitions},
		{createTopicsTopic("rf3", 1, 3), kerr.InvalidReplicationFactor},
		{createTopicsTopic("__cluster_metadata", 1, 1), kerr.InvalidRequest},
		{createTopicsTopic("fine", 1, 1), nil},
	}
	var topics []kmsg.CreateTopicsRequestTopic
	for _, c := range cases {
		topics = append(topics, c.topic)
	}
	for _, v := range []int16{0, 1, 7} {
		if v > 0 {
			topics[len(topics)-1].Topic = "fine" + string(rune('0'+v))
		}
		resp := h.do(createTopicsRequest(v, false, topics...)).(*kmsg.CreateTopicsResponse)
		if len(resp.Topics) != len(cases) {
			t.Fatalf("v%d: %d results for %d topics", v, len(resp.Topics), len(cases))
		}
		for i, c := range cases {
			got := resp.Topics[i]
			if got.Topic != topics[i].Topic {
				t.Fatalf("v%d result %d is for %q, want %q", v, i, got.Topic, topics[i].Topic)
			}
			adminWantCode(t, got.Topic, got.ErrorCode, c.want)
			// Messages exist from v1 on.
			if hasMessage := got.ErrorMessage != nil; v >= 1 && c.want != nil && !hasMessage || v == 0 && hasMessage {
				t.Fatalf("v%d %s: message %v", v, got.Topic, got.ErrorMessage)
			}
			if v >= 5 && c.want != nil && (got.NumPartitions != -1 || got.ReplicationFactor != -1) {
				t.Fatalf("v%d failed %s has counts %d/%d", v, got.Topic, got.NumPartitions, got.ReplicationFactor)
			}
		}
	}
	for _, name := range []string{"dup", "bad name", "badvalue", "zero", "rf3"} {
		if _, ok := h.cp.Image().Topic(name); ok {
			t.Fatalf("%q was created", name)
		}
	}
}
