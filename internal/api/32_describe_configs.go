package api

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/metadata"
)

// DescribeConfigs v0–4: topic configs (type 2), broker configs (type 4)
// and group configs (type 32, the share-group keys of config.GroupConfigs)
// with where each value comes from.
//
// A topic config resolves, first match wins, as the log applies it: the
// topic's override (DYNAMIC_TOPIC_CONFIG), the cluster-wide dynamic
// default set through the broker key (DYNAMIC_DEFAULT_BROKER_CONFIG), the
// broker key in this node's static config (STATIC_BROKER_CONFIG), the
// built-in default (DEFAULT_CONFIG). With include_synonyms the whole
// chain is listed in that order, under the names each layer uses
// (retention.ms, then log.retention.ms), as Kafka lists it.
var describeConfigsHandler = handler{key: 32, minVersion: 0, maxVersion: 4, serve: serveDescribeConfigs}

// Config sources, numbered as DescribeConfigsResponse's config_source.
const (
	describeSourceTopic          = kmsg.ConfigSourceDynamicTopicConfig         // 1
	describeSourceBroker         = kmsg.ConfigSourceDynamicBrokerConfig        // 2: this broker's own dynamic config
	describeSourceClusterDefault = kmsg.ConfigSourceDynamicDefaultBrokerConfig // 3: the cluster-wide dynamic default
	describeSourceStatic         = kmsg.ConfigSourceStaticBrokerConfig         // 4
	describeSourceDefault        = kmsg.ConfigSourceDefaultConfig              // 5
)

func serveDescribeConfigs(_ context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	img := b.Control.Image()
	z := b.authz(r)
	for _, res := range req.Resources {
		out := kmsg.NewDescribeConfigsResponseResource()
		out.ResourceType, out.ResourceName = res.ResourceType, res.ResourceName
		var configs []describedConfig
		err := z.configResource(auth.OpDescribeConfigs, res.ResourceType, res.ResourceName)
		if err == nil {
			configs, err = describeResource(b, img, res)
		}
		if err != nil {
			out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
			out.Configs = []kmsg.DescribeConfigsResponseResourceConfig{}
		} else {
			out.Configs = make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(configs))
			for _, c := range configs {
				if len(res.ConfigNames) > 0 && !slices.Contains(res.ConfigNames, c.name) {
					continue // an unknown requested key is left out, as Kafka does
				}
				out.Configs = append(out.Configs, c.entry(req, res.ResourceType))
			}
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}

// describedConfig is one config key of a resource, with its resolution
// chain (the first synonym holds the effective value).
type describedConfig struct {
	name      string
	typ       config.Type // 0 when unknown
	doc       string
	readOnly  bool
	sensitive bool
	synonyms  []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
}

func (c *describedConfig) add(name, value string, source kmsg.ConfigSource) {
	v := value
	c.synonyms = append(c.synonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: name, Value: &v, Source: source})
}

func (c *describedConfig) value() *string {
	if c.sensitive || len(c.synonyms) == 0 {
		return nil
	}
	return c.synonyms[0].Value
}

func (c *describedConfig) source() kmsg.ConfigSource {
	if len(c.synonyms) == 0 {
		return describeSourceDefault
	}
	return c.synonyms[0].Source
}

// entry is the response form of c for req's version and flags.
func (c *describedConfig) entry(req *kmsg.DescribeConfigsRequest, typ kmsg.ConfigResourceType) kmsg.DescribeConfigsResponseResourceConfig {
	out := kmsg.NewDescribeConfigsResponseResourceConfig()
	out.Name = c.name
	out.Value = c.value()
	out.ReadOnly = c.readOnly
	out.IsSensitive = c.sensitive
	out.Source = c.source()
	// v0 has no source: clients read is_default as DEFAULT_CONFIG and
	// anything else as the resource's own config (a topic override, a
	// broker's static config).
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		out.IsDefault = out.Source != describeSourceTopic
	case kmsg.ConfigResourceTypeGroupConfig:
		out.IsDefault = out.Source != kmsg.ConfigSourceGroupConfig
	default:
		out.IsDefault = out.Source == describeSourceDefault
	}
	out.ConfigType = kmsg.ConfigType(c.typ)
	if req.IncludeSynonyms {
		out.ConfigSynonyms = c.synonyms
		if c.sensitive {
			out.ConfigSynonyms = make([]kmsg.DescribeConfigsResponseResourceConfigConfigSynonym, len(c.synonyms))
			for i, s := range c.synonyms {
				out.ConfigSynonyms[i] = kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: s.Name, Source: s.Source}
			}
		}
	}
	if req.IncludeDocumentation && c.doc != "" {
		doc := c.doc
		out.Documentation = &doc
	}
	return out
}

// describeResource lists every config of one resource, sorted by name.
func describeResource(b *Broker, img *metadata.Image, res kmsg.DescribeConfigsRequestResource) ([]describedConfig, error) {
	switch res.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		if err := controller.ValidateTopicName(res.ResourceName); err != nil {
			return nil, err
		}
		if _, ok := img.Topic(res.ResourceName); !ok {
			return nil, fmt.Errorf("%w: topic %q", controller.ErrUnknownTopic, res.ResourceName)
		}
		return describeTopicConfigs(b, img, img.Configs(metadata.ConfigResourceTopic, res.ResourceName)), nil
	case kmsg.ConfigResourceTypeBroker:
		if err := adminCheckBrokerResource(b, res.ResourceName); err != nil {
			return nil, err
		}
		if res.ResourceName == "" {
			return describeClusterDefaults(img), nil
		}
		return describeBrokerConfigs(b, img), nil
	case kmsg.ConfigResourceTypeBrokerLogger:
		return nil, adminInvalidRequest("broker loggers (resource type 8) are not supported: Sluice has no per-logger log levels to describe or change")
	case kmsg.ConfigResourceTypeGroupConfig:
		if res.ResourceName == "" {
			return nil, adminInvalidRequest("a group resource needs a group id")
		}
		return describeGroupConfigs(b, img, img.Configs(metadata.ConfigResourceGroup, res.ResourceName)), nil
	}
	return nil, adminInvalidRequest("unsupported config resource type %d", res.ResourceType)
}

// describeGroupConfigs describes every group config Sluice serves for a
// group with the given overrides: the group's own value (GROUP_CONFIG),
// then the broker key it falls back to, as a topic config's chain runs.
// A group need not exist, as in Kafka.
func describeGroupConfigs(b *Broker, img *metadata.Image, overrides map[string]string) []describedConfig {
	clusterDefaults := img.Configs(metadata.ConfigResourceBroker, "")
	out := make([]describedConfig, 0, len(config.GroupConfigs))
	for i := range config.GroupConfigs {
		def := &config.GroupConfigs[i]
		c := describedConfig{name: def.Name, typ: def.Type, doc: def.Doc}
		if v, ok := config.GroupOverride(overrides, def.Name); ok {
			c.add(def.Name, v, kmsg.ConfigSourceGroupConfig)
		}
		if v, ok := clusterDefaults[def.BrokerName]; ok && def.Validate(v) == nil {
			c.add(def.BrokerName, v, describeSourceClusterDefault)
		}
		describeStaticLayers(b, &c, def.BrokerName, def)
		out = append(out, c)
	}
	return out
}

// describeTopicConfigs describes every topic config of a topic with the
// given overrides. CreateTopics reuses it for the configs of the topic it
// creates.
func describeTopicConfigs(b *Broker, img *metadata.Image, overrides map[string]string) []describedConfig {
	clusterDefaults := img.Configs(metadata.ConfigResourceBroker, "")
	out := make([]describedConfig, 0, len(config.TopicConfigs))
	for i := range config.TopicConfigs {
		def := &config.TopicConfigs[i]
		c := describedConfig{name: def.Name, typ: def.Type, doc: def.Doc}
		// A value that does not validate (written by a newer version) is
		// skipped, as config.TopicValues skips it when the log reads it.
		if v, ok := overrides[def.Name]; ok && def.Validate(v) == nil {
			c.add(def.Name, v, describeSourceTopic)
		}
		if v, ok := clusterDefaults[def.BrokerName]; ok && def.Validate(v) == nil {
			c.add(def.BrokerName, v, describeSourceClusterDefault)
		}
		describeStaticLayers(b, &c, def.BrokerName, def)
		out = append(out, c)
	}
	return out
}

// describeStaticLayers adds the static broker config of key, and the
// built-in default when def has one. A static value that was itself a
// default (the node filled it in) is reported as DEFAULT_CONFIG: the user
// set nothing.
func describeStaticLayers(b *Broker, c *describedConfig, key string, def *config.Def) {
	if v, ok := b.Config.Static[key]; ok && (def == nil || def.Validate(v) == nil) {
		if src, known := b.Config.StaticSources[key]; known && src == config.SourceDefault {
			c.add(key, v, describeSourceDefault)
			return
		}
		c.add(key, v, describeSourceStatic)
	}
	if def != nil {
		c.add(key, def.Default, describeSourceDefault)
	}
}

// describeClusterDefaults describes the broker resource "": only the
// cluster-wide dynamic configs that are set, as Kafka does.
func describeClusterDefaults(img *metadata.Image) []describedConfig {
	defaults := img.Configs(metadata.ConfigResourceBroker, "")
	out := make([]describedConfig, 0, len(defaults))
	for _, k := range slices.Sorted(maps.Keys(defaults)) {
		c := describedConfig{name: k}
		if def, ok := config.LookupBrokerConfig(k); ok {
			c.typ, c.doc = def.Type, def.Doc
		}
		c.add(k, defaults[k], describeSourceClusterDefault)
		out = append(out, c)
	}
	return out
}

// describeBrokerConfigs describes this broker: every static config, every
// dynamic one, and every broker key that sets a topic default. Only those
// keys can change at run time; the rest are read-only.
func describeBrokerConfigs(b *Broker, img *metadata.Image) []describedConfig {
	perBroker := img.Configs(metadata.ConfigResourceBroker, strconv.Itoa(int(b.NodeID)))
	clusterDefaults := img.Configs(metadata.ConfigResourceBroker, "")
	keys := map[string]bool{}
	for k := range b.Config.Static {
		keys[k] = true
	}
	for k := range perBroker {
		keys[k] = true
	}
	for k := range clusterDefaults {
		keys[k] = true
	}
	for i := range config.TopicConfigs {
		keys[config.TopicConfigs[i].BrokerName] = true
	}
	out := make([]describedConfig, 0, len(keys))
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		def, dynamic := config.LookupBrokerConfig(k)
		c := describedConfig{name: k, readOnly: !dynamic, sensitive: describeSensitive(k)}
		if dynamic {
			c.typ, c.doc = def.Type, def.Doc
		} else {
			def = nil
		}
		if v, ok := perBroker[k]; ok {
			c.add(k, v, describeSourceBroker)
		}
		if v, ok := clusterDefaults[k]; ok {
			c.add(k, v, describeSourceClusterDefault)
		}
		describeStaticLayers(b, &c, k, def)
		out = append(out, c)
	}
	return out
}

// describeSensitive guesses whether a static broker config holds a
// secret. Kafka knows from each key's PASSWORD type and hides the value;
// static keys here carry no type, so the name decides, erring towards
// hiding.
func describeSensitive(key string) bool {
	k := strings.ToLower(key)
	for _, s := range []string{"password", "secret", "jaas", "credential", "token", "private"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}
