package controller

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/metadata"
)

// maxTopicNameLength is Kafka's limit: a partition directory is
// "<topic>-<partition>", and 249 leaves room for the partition number and
// the ".deleted"/"-delete" suffixes within a 255-byte file name.
const maxTopicNameLength = 249

// ValidateTopicName applies Kafka's rules: 1 to 249 characters of
// [a-zA-Z0-9._-], and not "." or ".." (they would name directories that
// already mean something).
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrInvalidTopicName)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTopicName, name)
	case len(name) > maxTopicNameLength:
		return fmt.Errorf("%w: %d characters, at most %d allowed", ErrInvalidTopicName, len(name), maxTopicNameLength)
	}
	for i := 0; i < len(name); i++ {
		if !legalTopicChar(name[i]) {
			return fmt.Errorf("%w: %q contains %q; only ASCII letters, digits, '.', '_' and '-' are allowed",
				ErrInvalidTopicName, name, name[i])
		}
	}
	return nil
}

func legalTopicChar(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-'
}

// collisionKey maps names that differ only in '.' versus '_' to one key.
// Kafka forbids such pairs because metric names replace '.' with '_', so
// the two topics' metrics would be indistinguishable.
func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

func hasCollisionChars(name string) bool { return strings.ContainsAny(name, "._") }

// ConfigEntry is one config key and value, as requests carry them (a list,
// so a key given twice can be rejected rather than silently collapsed).
type ConfigEntry struct {
	Name  string
	Value string
}

// ReplicaAssignment is an explicit placement of one partition's replicas;
// the first replica is the preferred leader.
type ReplicaAssignment struct {
	Partition int32
	Replicas  []int32
}

// CreatableTopic is one topic of a CreateTopics request.
type CreatableTopic struct {
	Name              string
	NumPartitions     int32 // -1: num.partitions; must be -1 with Assignments
	ReplicationFactor int16 // -1: default.replication.factor; must be -1 with Assignments
	Assignments       []ReplicaAssignment
	Configs           []ConfigEntry
}

// CreateTopicsRequest creates topics; ValidateOnly checks without creating.
type CreateTopicsRequest struct {
	Topics       []CreatableTopic
	ValidateOnly bool
}

// CreateTopicResult is one topic's outcome, in request order.
type CreateTopicResult struct {
	Name              string
	Err               error
	TopicID           metadata.UUID // zero when Err != nil or ValidateOnly
	NumPartitions     int32
	ReplicationFactor int16
}

// CreateTopicsResponse has one result per requested topic.
type CreateTopicsResponse struct {
	Topics []CreateTopicResult
}

// createBatch is what one CreateTopics decision has claimed so far: topics
// earlier in the request are not in the Image yet, but later topics must
// not take their names, ids or placement slots.
type createBatch struct {
	img        *metadata.Image
	collisions map[string]string // collisionKey -> name, built on first need
	ids        map[metadata.UUID]bool
	placed     int // partitions placed by this decision
}

// CreateTopics decides a CreateTopics request. Each topic stands alone: a
// bad topic gets an error result and no records, and the others are still
// created, as in Kafka. A name given twice fails both times.
func (c *Controller) CreateTopics(img *metadata.Image, req CreateTopicsRequest) ([]metadata.Record, CreateTopicsResponse) {
	counts := map[string]int{}
	for _, t := range req.Topics {
		counts[t.Name]++
	}
	batch := &createBatch{img: img, ids: map[metadata.UUID]bool{}}
	placer := newPlacer(img)
	var records []metadata.Record
	resp := CreateTopicsResponse{Topics: make([]CreateTopicResult, len(req.Topics))}
	for i, t := range req.Topics {
		res := &resp.Topics[i]
		res.Name = t.Name
		if counts[t.Name] > 1 {
			res.Err = fmt.Errorf("%w: topic %q appears %d times in the request", ErrInvalidRequest, t.Name, counts[t.Name])
			continue
		}
		var recs []metadata.Record
		recs, res.Err = c.createTopic(batch, placer, t, res, req.ValidateOnly)
		records = append(records, recs...)
	}
	return records, resp
}

// createTopic validates one topic and returns its records: Topic, then a
// Partition per partition, then a Config per override.
func (c *Controller) createTopic(batch *createBatch, placer *placer, t CreatableTopic, res *CreateTopicResult, validateOnly bool) ([]metadata.Record, error) {
	if err := batch.checkName(t.Name); err != nil {
		return nil, err
	}
	configs, err := topicConfigs(t.Configs)
	if err != nil {
		return nil, fmt.Errorf("topic %q: %w", t.Name, err)
	}
	assignments, err := c.assignTopic(batch, placer, t)
	if err != nil {
		return nil, fmt.Errorf("topic %q: %w", t.Name, err)
	}
	res.NumPartitions, res.ReplicationFactor = int32(len(assignments)), int16(len(assignments[0]))
	if validateOnly {
		return nil, nil
	}
	id := batch.newTopicID(c.ids)
	res.TopicID = id
	batch.claimName(t.Name)
	records := make([]metadata.Record, 0, 1+len(assignments)+len(configs))
	records = append(records, &metadata.Topic{Name: t.Name, ID: id})
	alive := aliveIn(batch.img, nil)
	for p, replicas := range assignments {
		isr := filter(replicas, alive)
		records = append(records, &metadata.Partition{
			TopicID: id, Partition: int32(p), Replicas: replicas, ISR: isr, Leader: isr[0],
		})
	}
	return append(records, configRecords(metadata.ConfigResourceTopic, t.Name, configs)...), nil
}

// checkName rejects invalid names, existing topics, and names colliding
// with an existing topic or one created earlier in the same decision.
func (b *createBatch) checkName(name string) error {
	if err := ValidateTopicName(name); err != nil {
		return err
	}
	if _, exists := b.img.Topic(name); exists {
		return fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	if !hasCollisionChars(name) {
		return nil
	}
	b.buildCollisions()
	if other, ok := b.collisions[collisionKey(name)]; ok {
		return fmt.Errorf("%w: topic %q collides with existing topic %q ('.' and '_' are the same in metric names)",
			ErrInvalidTopicName, name, other)
	}
	return nil
}

// buildCollisions indexes the Image's names with '.' or '_' once per
// decision; most names have neither, and never pay for it.
func (b *createBatch) buildCollisions() {
	if b.collisions != nil {
		return
	}
	b.collisions = map[string]string{}
	for _, t := range b.img.Topics() {
		if hasCollisionChars(t.Name) {
			b.collisions[collisionKey(t.Name)] = t.Name
		}
	}
}

// claimName records a topic created by this decision, so a later topic of
// the same request cannot collide with it. (Taking the same name is
// already excluded: a name given twice fails both times.)
func (b *createBatch) claimName(name string) {
	if !hasCollisionChars(name) {
		return
	}
	b.buildCollisions()
	b.collisions[collisionKey(name)] = name
}

// newTopicID draws ids until one is usable: not zero (Kafka's "no id"), not
// in use, and not starting with '-' in its base64 form (a leading dash
// reads as a flag on command lines; Kafka redraws those too). A random
// source gives a usable id on the first or second draw; one that keeps
// failing is broken, and looping on it forever would hang the controller.
func (b *createBatch) newTopicID(ids IDGenerator) metadata.UUID {
	for range maxIDDraws {
		id := ids.NewUUID()
		_, inUse := b.img.TopicByID(id)
		if id == (metadata.UUID{}) || inUse || b.ids[id] || id[0]>>2 == 62 {
			continue
		}
		b.ids[id] = true
		return id
	}
	panic(fmt.Sprintf("controller: IDGenerator gave %d unusable topic ids in a row", maxIDDraws))
}

const maxIDDraws = 64

// topicConfigs validates a topic's config overrides as a set.
func topicConfigs(entries []ConfigEntry) (map[string]string, error) {
	configs := make(map[string]string, len(entries))
	for _, e := range entries {
		if _, dup := configs[e.Name]; dup {
			return nil, fmt.Errorf("%w: %s given twice", ErrInvalidConfig, e.Name)
		}
		configs[e.Name] = e.Value
	}
	if err := config.ValidateTopicConfigs(configs); err != nil {
		return nil, withKind(ErrInvalidConfig, err)
	}
	return configs, nil
}

// configRecords sets each key of configs, in key order.
func configRecords(typ metadata.ConfigResourceType, name string, configs map[string]string) []metadata.Record {
	keys := make([]string, 0, len(configs))
	for k := range configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	records := make([]metadata.Record, len(keys))
	for i, k := range keys {
		records[i] = &metadata.Config{ResourceType: typ, ResourceName: name, Name: k, Value: configs[k]}
	}
	return records
}

// assignTopic returns each partition's replicas: the explicit assignment,
// validated, or a placement over the unfenced brokers.
func (c *Controller) assignTopic(batch *createBatch, placer *placer, t CreatableTopic) ([][]int32, error) {
	if len(t.Assignments) > 0 {
		if t.NumPartitions != -1 || t.ReplicationFactor != -1 {
			return nil, fmt.Errorf("%w: an explicit assignment needs partitions and replication factor -1, not %d and %d",
				ErrInvalidRequest, t.NumPartitions, t.ReplicationFactor)
		}
		assignments, err := manualAssignment(batch.img, t.Assignments, batch.placed)
		if err == nil {
			batch.placed += len(assignments)
		}
		return assignments, err
	}
	partitions, rf := t.NumPartitions, t.ReplicationFactor
	if partitions == -1 {
		partitions = c.cfg.NumPartitions
	}
	if rf == -1 {
		rf = c.cfg.DefaultReplicationFactor
	}
	if partitions < 1 {
		return nil, fmt.Errorf("%w: %d partitions (want at least 1, or -1 for num.partitions)", ErrInvalidPartitions, t.NumPartitions)
	}
	if rf < 1 {
		return nil, fmt.Errorf("%w: %d (want at least 1, or -1 for default.replication.factor)", ErrInvalidReplicationFactor, t.ReplicationFactor)
	}
	if err := checkBudget(batch.placed, int(partitions)); err != nil {
		return nil, err
	}
	start := batch.img.NumPartitions() + batch.placed
	assignments, err := placer.place(start, int(partitions), int(rf))
	if err == nil {
		batch.placed += int(partitions)
	}
	return assignments, err
}

func checkBudget(placed, more int) error {
	if placed+more > maxPartitionsPerRequest {
		return fmt.Errorf("%w: %d partitions, at most %d per request", ErrTooManyPartitions, placed+more, maxPartitionsPerRequest)
	}
	return nil
}

// manualAssignment validates an explicit assignment: partition ids 0..n-1
// each once, one replication factor throughout, known brokers, no broker
// twice in a partition, and at least one live replica per partition to
// lead it.
func manualAssignment(img *metadata.Image, in []ReplicaAssignment, placed int) ([][]int32, error) {
	if err := checkBudget(placed, len(in)); err != nil {
		return nil, err
	}
	out := make([][]int32, len(in))
	for _, a := range in {
		if a.Partition < 0 || int(a.Partition) >= len(in) || out[a.Partition] != nil {
			return nil, fmt.Errorf("%w: partition ids must be 0 to %d, each once; got %d", ErrInvalidReplicaAssignment, len(in)-1, a.Partition)
		}
		if err := checkReplicas(img, a.Partition, a.Replicas, len(in[0].Replicas)); err != nil {
			return nil, err
		}
		out[a.Partition] = slices.Clone(a.Replicas)
	}
	return out, nil
}

// checkReplicas validates one partition's explicit replicas against the
// replication factor rf the other partitions have.
func checkReplicas(img *metadata.Image, partition int32, replicas []int32, rf int) error {
	if len(replicas) == 0 || len(replicas) != rf {
		return fmt.Errorf("%w: partition %d has %d replicas, want %d like the others (and at least 1)",
			ErrInvalidReplicaAssignment, partition, len(replicas), rf)
	}
	live := false
	for i, r := range replicas {
		if slices.Contains(replicas[:i], r) {
			return fmt.Errorf("%w: partition %d names broker %d twice", ErrInvalidReplicaAssignment, partition, r)
		}
		b, ok := img.Broker(r)
		if !ok {
			return fmt.Errorf("%w: partition %d names broker %d, which is not registered", ErrInvalidReplicaAssignment, partition, r)
		}
		live = live || !b.Fenced
	}
	if !live {
		return fmt.Errorf("%w: every replica of partition %d (%v) is fenced", ErrInvalidReplicaAssignment, partition, replicas)
	}
	return nil
}
