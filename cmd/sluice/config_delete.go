package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka answers IncrementalAlterConfigs DELETE of a key that has no value
// in that layer with success and changes nothing, so a typo, or --node
// where the value was cluster-wide, would print "deleted" for nothing. The
// commands ask first, with include_synonyms (each layer that holds a value
// for the key), and refuse a delete that would do nothing. Between the
// check and the alter another client may change the key; the check is for
// the user's mistakes, not for races.

// configLayer is where a --delete removes a value from.
type configLayer struct {
	resource kmsg.DescribeConfigsRequestResource
	source   kmsg.ConfigSource // the layer's source in DescribeConfigs
	what     string            // "topic orders", "node 2", "the cluster-wide default"
}

func topicLayer(topic string) configLayer {
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	return configLayer{resource: res, source: kmsg.ConfigSourceDynamicTopicConfig, what: "topic " + topic}
}

// brokerLayer is node's own dynamic values, or with perNode false the
// cluster-wide ones, as node resolves them.
func brokerLayer(node int32, perNode bool) configLayer {
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, fmt.Sprint(node)
	if perNode {
		return configLayer{resource: res, source: kmsg.ConfigSourceDynamicBrokerConfig, what: fmt.Sprintf("node %d", node)}
	}
	return configLayer{resource: res, source: kmsg.ConfigSourceDynamicDefaultBrokerConfig, what: "the cluster-wide default"}
}

// requireDeletesSet fails unless every key of deletes has a value in
// layer, naming the keys that do not.
func requireDeletesSet(ctx context.Context, cl *kgo.Client, layer configLayer, deletes []string) error {
	if len(deletes) == 0 {
		return nil
	}
	res := layer.resource
	res.ConfigNames = deletes
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Resources = []kmsg.DescribeConfigsRequestResource{res}
	req.IncludeSynonyms = true
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("describe configs of %s: %w", layer.what, err)
	}
	if len(resp.Resources) != 1 {
		return fmt.Errorf("describe configs of %s: %d resources in the answer, want 1", layer.what, len(resp.Resources))
	}
	r := resp.Resources[0]
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return withBrokerMessage(fmt.Errorf("describe configs of %s: %w", layer.what, err), r.ErrorMessage)
	}
	var unset []string
	for _, key := range deletes {
		if !layerHas(r.Configs, key, layer.source) {
			unset = append(unset, key)
		}
	}
	switch len(unset) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s has no value of %s to delete (its value comes from another layer; `describe` shows which)", layer.what, unset[0])
	}
	return fmt.Errorf("%s has no value of %s to delete (their values come from other layers; `describe` shows which)",
		layer.what, strings.Join(unset, ", "))
}

// layerHas says whether key has a value from source: as a synonym, or as
// the entry itself when the broker sends no synonyms.
func layerHas(configs []kmsg.DescribeConfigsResponseResourceConfig, key string, source kmsg.ConfigSource) bool {
	i := slices.IndexFunc(configs, func(c kmsg.DescribeConfigsResponseResourceConfig) bool { return c.Name == key })
	if i < 0 {
		return false
	}
	c := configs[i]
	if c.Source == source {
		return true
	}
	return slices.ContainsFunc(c.ConfigSynonyms, func(s kmsg.DescribeConfigsResponseResourceConfigConfigSynonym) bool {
		return s.Name == key && s.Source == source
	})
}
