package controller

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/metadata"
)

// ConfigResource names a topic, or a broker by id, or (empty name of type
// broker) the cluster-wide broker defaults, or a group.
type ConfigResource struct {
	Type metadata.ConfigResourceType
	Name string
}

// AlterConfigsResource replaces all of a resource's configs with Configs.
type AlterConfigsResource struct {
	ConfigResource
	Configs []ConfigEntry
}

// AlterConfigsRequest is Kafka's legacy AlterConfigs: each resource's set
// of overrides is replaced whole, so a key not listed reverts to its default.
type AlterConfigsRequest struct {
	Resources    []AlterConfigsResource
	ValidateOnly bool
}

// ConfigOpType is an IncrementalAlterConfigs operation, numbered as in
// Kafka's request.
type ConfigOpType int8

const (
	OpSet      ConfigOpType = 0
	OpDelete   ConfigOpType = 1 // revert to the default
	OpAppend   ConfigOpType = 2 // list configs: add items not yet present
	OpSubtract ConfigOpType = 3 // list configs: remove items
)

// ConfigOp is one operation on one key.
type ConfigOp struct {
	Name  string
	Op    ConfigOpType
	Value string
}

// IncrementalAlterConfigsResource changes some of a resource's configs.
type IncrementalAlterConfigsResource struct {
	ConfigResource
	Ops []ConfigOp
}

// IncrementalAlterConfigsRequest changes configs key by key.
type IncrementalAlterConfigsRequest struct {
	Resources    []IncrementalAlterConfigsResource
	ValidateOnly bool
}

// ConfigResult is one resource's outcome, in request order.
type ConfigResult struct {
	ConfigResource
	Err error
}

// AlterConfigsResponse has one result per requested resource, for both
// AlterConfigs and IncrementalAlterConfigs.
type AlterConfigsResponse struct {
	Resources []ConfigResult
}

// AlterConfigs decides a legacy AlterConfigs request.
func (c *Controller) AlterConfigs(img *metadata.Image, req AlterConfigsRequest) ([]metadata.Record, AlterConfigsResponse) {
	resources := make([]ConfigResource, len(req.Resources))
	for i, r := range req.Resources {
		resources[i] = r.ConfigResource
	}
	return c.alterConfigs(img, resources, req.ValidateOnly, func(i int, _ map[string]string) (map[string]string, error) {
		next := map[string]string{}
		for _, e := range req.Resources[i].Configs {
			if _, dup := next[e.Name]; dup {
				return nil, fmt.Errorf("%w: %s given twice", ErrInvalidRequest, e.Name)
			}
			next[e.Name] = e.Value
		}
		return next, nil
	})
}

// IncrementalAlterConfigs decides an IncrementalAlterConfigs request.
func (c *Controller) IncrementalAlterConfigs(img *metadata.Image, req IncrementalAlterConfigsRequest) ([]metadata.Record, AlterConfigsResponse) {
	resources := make([]ConfigResource, len(req.Resources))
	for i, r := range req.Resources {
		resources[i] = r.ConfigResource
	}
	return c.alterConfigs(img, resources, req.ValidateOnly, func(i int, current map[string]string) (map[string]string, error) {
		return applyOps(img, resources[i], current, req.Resources[i].Ops)
	})
}

// alterConfigs runs both kinds of request: for each resource, next computes
// its new configs from the current ones; they are validated as a whole and
// the difference is emitted. Each resource stands alone, as in Kafka.
func (c *Controller) alterConfigs(img *metadata.Image, resources []ConfigResource, validateOnly bool,
	next func(i int, current map[string]string) (map[string]string, error)) ([]metadata.Record, AlterConfigsResponse) {
	counts := map[ConfigResource]int{}
	for _, r := range resources {
		counts[r]++
	}
	changed := map[ConfigResource]map[string]string{}
	var records []metadata.Record
	resp := AlterConfigsResponse{Resources: make([]ConfigResult, len(resources))}
	for i, r := range resources {
		resp.Resources[i].ConfigResource = r
		if counts[r] > 1 {
			resp.Resources[i].Err = fmt.Errorf("%w: resource %q appears %d times", ErrInvalidRequest, r.Name, counts[r])
			continue
		}
		current := img.Configs(r.Type, r.Name)
		var updated map[string]string
		err := checkResource(img, r)
		if err == nil {
			updated, err = next(i, current)
		}
		if err == nil {
			err = validateResource(r, updated)
		}
		if err != nil {
			resp.Resources[i].Err = err
			continue
		}
		if !validateOnly {
			records = append(records, configDiff(r, current, updated)...)
			changed[r] = updated
		}
	}
	return append(records, c.uncleanAfterConfigChange(img, changed)...), resp
}

// checkResource rejects unknown topics, malformed broker ids, a group
// without an id and unknown resource types. A group need not exist.
func checkResource(img *metadata.Image, r ConfigResource) error {
	switch r.Type {
	case metadata.ConfigResourceTopic:
		if _, ok := img.Topic(r.Name); !ok {
			return fmt.Errorf("%w: topic %q", ErrUnknownTopic, r.Name)
		}
	case metadata.ConfigResourceBroker:
		if r.Name == "" {
			return nil
		}
		if id, err := strconv.ParseInt(r.Name, 10, 32); err != nil || id < 0 {
			return fmt.Errorf("%w: broker resource %q is not a broker id", ErrInvalidRequest, r.Name)
		}
	case metadata.ConfigResourceGroup:
		if r.Name == "" {
			return fmt.Errorf("%w: a group resource needs a group id", ErrInvalidRequest)
		}
	default:
		return fmt.Errorf("%w: config resource type %d", ErrInvalidRequest, r.Type)
	}
	return nil
}

// validateResource checks a resource's complete new set of configs.
func validateResource(r ConfigResource, configs map[string]string) error {
	var err error
	switch r.Type {
	case metadata.ConfigResourceTopic:
		err = config.ValidateTopicConfigs(configs)
	case metadata.ConfigResourceGroup:
		err = config.ValidateGroupConfigs(configs)
	default:
		for _, k := range slices.Sorted(maps.Keys(configs)) {
			if err = config.ValidateBrokerConfig(k, configs[k]); err != nil {
				break
			}
		}
	}
	if err != nil {
		return withKind(ErrInvalidConfig, err)
	}
	return nil
}

// configDiff emits the records taking a resource from current to updated:
// deletes for keys that went away, sets for keys new or changed.
func configDiff(r ConfigResource, current, updated map[string]string) []metadata.Record {
	var records []metadata.Record
	for _, k := range slices.Sorted(maps.Keys(current)) {
		if _, ok := updated[k]; !ok {
			records = append(records, &metadata.Config{ResourceType: r.Type, ResourceName: r.Name, Name: k, Delete: true})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(updated)) {
		if v, ok := current[k]; !ok || v != updated[k] {
			records = append(records, &metadata.Config{ResourceType: r.Type, ResourceName: r.Name, Name: k, Value: updated[k]})
		}
	}
	return records
}

// applyOps applies IncrementalAlterConfigs operations to a copy of current.
func applyOps(img *metadata.Image, r ConfigResource, current map[string]string, ops []ConfigOp) (map[string]string, error) {
	next := maps.Clone(current)
	if next == nil {
		next = map[string]string{}
	}
	seen := map[string]bool{}
	for _, op := range ops {
		if seen[op.Name] {
			return nil, fmt.Errorf("%w: %s changed twice", ErrInvalidRequest, op.Name)
		}
		seen[op.Name] = true
		switch op.Op {
		case OpSet:
			next[op.Name] = op.Value
		case OpDelete:
			delete(next, op.Name)
		case OpAppend, OpSubtract:
			value, err := listOp(img, r, next, op)
			if err != nil {
				return nil, err
			}
			next[op.Name] = value
		default:
			return nil, fmt.Errorf("%w: config operation %d on %s", ErrInvalidRequest, op.Op, op.Name)
		}
	}
	return next, nil
}

// listOp appends or subtracts the items of op.Value to or from the key's
// value in effect: the resource's own, else (for a topic) the cluster
// default, else the built-in default — so appending "compact" to a topic
// that never set cleanup.policy gives "delete,compact", as in Kafka.
func listOp(img *metadata.Image, r ConfigResource, configs map[string]string, op ConfigOp) (string, error) {
	def, err := lookupDef(r.Type, op.Name)
	if err != nil {
		return "", err
	}
	if def.Type != config.TypeList {
		return "", fmt.Errorf("%w: %s is a %s, not a list; only lists can be appended to or subtracted from", ErrInvalidConfig, op.Name, def.Type)
	}
	value, ok := configs[op.Name]
	if !ok {
		value = def.Default
		if r.Type == metadata.ConfigResourceTopic {
			value = config.TopicValues{BrokerDefaults: img.Configs(metadata.ConfigResourceBroker, "")}.String(def.Name)
		}
	}
	items := config.SplitList(value)
	for _, item := range config.SplitList(op.Value) {
		has := slices.Contains(items, item)
		if op.Op == OpAppend && !has {
			items = append(items, item)
		} else if op.Op == OpSubtract && has {
			items = slices.DeleteFunc(items, func(s string) bool { return s == item })
		}
	}
	return strings.Join(items, ","), nil
}

func lookupDef(typ metadata.ConfigResourceType, name string) (*config.Def, error) {
	lookup := config.LookupTopicConfig
	switch typ {
	case metadata.ConfigResourceBroker:
		lookup = config.LookupBrokerConfig
	case metadata.ConfigResourceGroup:
		lookup = config.LookupGroupConfig
	}
	if def, ok := lookup(name); ok {
		return def, nil
	}
	return nil, withKind(ErrInvalidConfig, fmt.Errorf("%w: %q is not a %s config", config.ErrUnknownConfig, name, resourceTypeName(typ)))
}

// uncleanAfterConfigChange gives leaderless partitions a leader when the
// change just allowed unclean election for their topic, as Kafka does:
// otherwise turning the setting on would only help at the next failure.
func (c *Controller) uncleanAfterConfigChange(img *metadata.Image, changed map[ConfigResource]map[string]string) []metadata.Record {
	cluster, clusterChanged := changed[ConfigResource{metadata.ConfigResourceBroker, ""}]
	if !clusterChanged {
		cluster = img.Configs(metadata.ConfigResourceBroker, "")
	}
	var topics []*metadata.TopicImage
	if clusterChanged {
		topics = img.Topics()
	} else {
		for _, r := range slices.SortedFunc(maps.Keys(changed), compareResources) {
			if t, ok := img.Topic(r.Name); ok && r.Type == metadata.ConfigResourceTopic {
				topics = append(topics, t)
			}
		}
	}
	alive := aliveIn(img, nil)
	var records []metadata.Record
	for _, t := range topics {
		topicConfigs, ok := changed[ConfigResource{metadata.ConfigResourceTopic, t.Name}]
		if !ok {
			topicConfigs = img.Configs(metadata.ConfigResourceTopic, t.Name)
		}
		if !c.uncleanFrom(topicConfigs, cluster) {
			continue
		}
		for id, p := range t.Partitions {
			if p.Leader == metadata.NoLeader {
				records = appendChange(records, change(t.ID, int32(id), p, reelect(p, alive, true)))
			}
		}
	}
	return records
}

func compareResources(a, b ConfigResource) int {
	if a.Type != b.Type {
		return int(a.Type) - int(b.Type)
	}
	return strings.Compare(a.Name, b.Name)
}

func resourceTypeName(typ metadata.ConfigResourceType) string {
	switch typ {
	case metadata.ConfigResourceBroker:
		return "dynamic broker"
	case metadata.ConfigResourceGroup:
		return "group"
	}
	return "topic"
}
