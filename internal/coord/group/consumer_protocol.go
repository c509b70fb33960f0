package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/sluicelog/sluice/internal/metadata"
)

// The embedded consumer protocol of classic consumers: the bytes a
// JoinGroup carries as a protocol's metadata (ConsumerProtocolSubscription)
// and a SyncGroup as a member's assignment (ConsumerProtocolAssignment).
// The coordinator reads them only where the two group protocols meet: a
// classic member of a consumer-protocol group, and a group converted
// between the protocols. Non-flexible, big-endian:
//
//	subscription: version int16 | topics [string] | user_data nullable bytes |
//	              v1+: owned_partitions [topic string, partitions [int32]] |
//	              v2+: generation_id int32 | v3+: rack_id nullable string
//	assignment:   version int16 | assigned_partitions [topic string, partitions [int32]] |
//	              user_data nullable bytes   (the same fields in v0–v3)
//
// A version above 3 is read as 3: later versions may only add fields at
// the end, which are ignored.

// errMalformedConsumerProtocol: subscription or assignment bytes that do
// not parse; the caller maps it to Kafka's error for its request.
var errMalformedConsumerProtocol = errors.New("malformed embedded consumer protocol")

// maxConsumerProtocolVersion is the newest version the coordinator writes.
const maxConsumerProtocolVersion = 3

// consumerSubscription is a decoded ConsumerProtocolSubscription.
type consumerSubscription struct {
	version int16
	topics  []string
	owned   []namedPartitions
	rackID  string
}

// namedPartitions are partitions of one topic, by name.
type namedPartitions struct {
	topic      string
	partitions []int32
}

// parseConsumerSubscription decodes a classic member's subscription.
func parseConsumerSubscription(b []byte) (consumerSubscription, error) {
	r := reader{b: b}
	sub := consumerSubscription{version: r.int16()}
	if sub.version < 0 {
		return sub, fmt.Errorf("subscription version %d: %w", sub.version, errMalformedConsumerProtocol)
	}
	n := int(r.int32())
	if n < 0 || !r.need(n*2) {
		return sub, fmt.Errorf("subscription of %d topics: %w", n, errMalformedConsumerProtocol)
	}
	for range n {
		sub.topics = append(sub.topics, r.string())
	}
	r.bytes() // user data: the client's own
	if sub.version >= 1 {
		sub.owned = r.namedPartitions()
	}
	if sub.version >= 2 {
		r.int32() // generation id, which the member epoch replaces
	}
	if sub.version >= 3 {
		sub.rackID = r.string()
	}
	if r.err != nil {
		return sub, fmt.Errorf("subscription v%d: %w", sub.version, errMalformedConsumerProtocol)
	}
	return sub, nil
}

// parseConsumerAssignment decodes a classic member's assignment and its
// user data (a client-side assignor's own bytes; nil when null or absent);
// an empty one (a member the leader gave nothing, or none yet) has no
// partitions.
func parseConsumerAssignment(b []byte) ([]namedPartitions, []byte, error) {
	if len(b) == 0 {
		return nil, nil, nil
	}
	r := reader{b: b}
	if v := r.int16(); v < 0 {
		return nil, nil, fmt.Errorf("assignment version %d: %w", v, errMalformedConsumerProtocol)
	}
	out := r.namedPartitions()
	var userData []byte
	if r.err == nil && len(r.b) >= 4 {
		userData = r.bytes()
	}
	if r.err != nil {
		return nil, nil, fmt.Errorf("assignment: %w", errMalformedConsumerProtocol)
	}
	return out, userData, nil
}

// namedPartitions reads an array of (topic, [partition]).
func (r *reader) namedPartitions() []namedPartitions {
	n := int(r.int32())
	if n == -1 {
		return nil
	}
	if n < 0 || !r.need(n*6) {
		r.err = ErrCorruptRecord
		return nil
	}
	out := make([]namedPartitions, 0, n)
	for range n {
		t := namedPartitions{topic: r.string()}
		np := int(r.int32())
		if np < 0 || !r.need(np*4) {
			r.err = ErrCorruptRecord
			return nil
		}
		for range np {
			t.partitions = append(t.partitions, r.int32())
		}
		out = append(out, t)
	}
	return out
}

// protocolVersion is the version of a subscription, the version a
// classic member's assignment is written back in (as Kafka does), capped
// at the newest the coordinator writes.
func protocolVersion(subscription []byte) int16 {
	if len(subscription) < 2 {
		return 0
	}
	v := int16(binary.BigEndian.Uint16(subscription))
	return min(max(v, 0), maxConsumerProtocolVersion)
}

// encodeConsumerAssignment writes a ConsumerProtocolAssignment with null
// user data: what the server-side assignor gave a classic member.
func encodeConsumerAssignment(version int16, topics []namedPartitions) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(len(topics)))
	for _, t := range topics {
		b = appendString(b, t.topic)
		b = binary.BigEndian.AppendUint32(b, uint32(len(t.partitions)))
		for _, p := range t.partitions {
			b = binary.BigEndian.AppendUint32(b, uint32(p))
		}
	}
	return binary.BigEndian.AppendUint32(b, 0xffffffff)
}

// namedSet is a set by topic name, in id order: names the group learnt
// (topicNames), else img's (after a load the group has ids only); a
// topic whose name is unknown (deleted since) is left out.
func (c *consumerGroup) namedSet(set partitionSet, img *metadata.Image) []namedPartitions {
	var out []namedPartitions
	for _, t := range topicPartitionsOf(set) {
		name, ok := c.topicNames[t.TopicID]
		if !ok && img != nil {
			if ti, found := img.TopicByID(t.TopicID); found {
				name, ok = ti.Name, true
				c.topicNames[t.TopicID] = name
			}
		}
		if ok {
			out = append(out, namedPartitions{topic: name, partitions: t.Partitions})
		}
	}
	return out
}

// idSet resolves partitions named by topic to ids in img, remembering the
// names; topics img does not have are left out, as Kafka does.
func (c *consumerGroup) idSet(named []namedPartitions, img *metadata.Image) partitionSet {
	set := partitionSet{}
	if img == nil {
		return set
	}
	for _, t := range named {
		ti, ok := img.Topic(t.topic)
		if !ok {
			continue
		}
		c.topicNames[ti.ID] = ti.Name
		for _, p := range t.partitions {
			set[partitionKey{ti.ID, p}] = struct{}{}
		}
	}
	return set
}

// sortedTopics is a subscription's topics as a member stores them.
func sortedTopics(topics []string) []string {
	names := slices.Clone(topics)
	slices.Sort(names)
	return slices.Compact(names)
}
