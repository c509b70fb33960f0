package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/metadata"
)

// Metadata v0–12: the live brokers, the controller and the requested
// topics' partitions, from this node's metadata image. A requested topic
// that does not exist is created when auto.create.topics.enable is on and
// the request allows it (always before v4), as Kafka does; the answer then
// comes from the image that holds the new topic.
var metadataHandler = handler{key: 3, minVersion: 0, maxVersion: 12, serve: serveMetadata}

// metadataAutoCreateTimeout bounds the controller round trip of an
// auto-creation: Metadata has no timeout field, and a client that waits
// too long retries anyway.
const metadataAutoCreateTimeout = 10 * time.Second

func serveMetadata(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	z := b.authz(r)
	metadataAnswer(ctx, b, z, req, resp)
	metadataAuthorizedOperations(z, req, resp)
	return resp, nil
}

// metadataAnswer fills the brokers, the controller and the topics.
func metadataAnswer(ctx context.Context, b *Broker, z *authz, req *kmsg.MetadataRequest, resp *kmsg.MetadataResponse) {
	img := b.Control.Image()
	// v0 has no null array: an empty list means every topic. From v1 on,
	// null means every topic and an empty list none.
	allTopics := req.Topics == nil || req.Version == 0 && len(req.Topics) == 0
	var created map[string]error
	if !allTopics {
		img, created = metadataAutoCreate(ctx, b, z, img, req)
	}

	for _, bi := range adminAliveBrokers(img) {
		host, port, _ := adminEndpoint(bi, requestListener(ctx))
		resp.Brokers = append(resp.Brokers, kmsg.MetadataResponseBroker{NodeID: bi.ID, Host: host, Port: port, Rack: adminRack(bi)})
	}
	clusterID := b.ClusterID
	resp.ClusterID = &clusterID
	resp.ControllerID = adminControllerID(b, img)

	if allTopics {
		// Topics the principal may not describe are left out, as if
		// they did not exist.
		for _, t := range img.Topics() {
			if z.topic(auth.OpDescribe, t.Name) == nil {
				resp.Topics = append(resp.Topics, metadataTopic(img, req.Version, t))
			}
		}
		return
	}
	seenNames := map[string]bool{}
	seenIDs := map[metadata.UUID]bool{}
	for _, rt := range req.Topics {
		if rt.Topic == nil {
			// By id (v10+): Kafka answers each id once.
			id := metadata.UUID(rt.TopicID)
			if !seenIDs[id] {
				seenIDs[id] = true
				resp.Topics = append(resp.Topics, metadataTopicByID(img, z, req.Version, id))
			}
			continue
		}
		name := *rt.Topic
		if seenNames[name] {
			continue
		}
		seenNames[name] = true
		if err := z.topic(auth.OpDescribe, name); err != nil {
			resp.Topics = append(resp.Topics, metadataTopicDenied(name, err))
			continue
		}
		resp.Topics = append(resp.Topics, metadataTopicByName(img, req.Version, name, created))
	}
}

// Authorized operations bit fields (KIP-430): bit n set means operation n.
const (
	// topicAllOperations: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
	// DESCRIBE_CONFIGS, ALTER_CONFIGS, what a topic supports in Kafka.
	topicAllOperations int32 = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
	// clusterAllOperations: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
	// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
	clusterAllOperations int32 = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12
)

// metadataAuthorizedOperations fills the authorized operations a v8+
// request asks for: each answered topic's, and the cluster's (v8–10).
// Without an authorizer every supported operation is set, as Kafka does.
func metadataAuthorizedOperations(z *authz, req *kmsg.MetadataRequest, resp *kmsg.MetadataResponse) {
	if req.Version < 8 {
		return
	}
	if req.IncludeTopicAuthorizedOperations {
		for i := range resp.Topics {
			t := &resp.Topics[i]
			if t.ErrorCode == 0 && t.Topic != nil {
				t.AuthorizedOperations = z.operations(auth.ResourceTopic, *t.Topic, topicAllOperations)
			}
		}
	}
	if req.IncludeClusterAuthorizedOperations && req.Version <= 10 {
		resp.AuthorizedOperations = z.operations(auth.ResourceCluster, auth.ClusterName, clusterAllOperations)
	}
}

// metadataTopicDenied answers a topic the principal may not describe,
// whether or not it exists.
func metadataTopicDenied(name string, err error) kmsg.MetadataResponseTopic {
	out := kmsg.NewMetadataResponseTopic()
	out.Topic = &name
	out.IsInternal = adminIsInternalTopic(name)
	out.ErrorCode = errorCode(err)
	return out
}

// metadataAutoCreate creates the requested topics that do not exist, if
// the broker and the request allow it, and returns the image to answer
// from with each creation's outcome by name. Creating needs CREATE on the
// cluster or on the topic; a topic the principal may not create gets
// TOPIC_AUTHORIZATION_FAILED, as in Kafka.
func metadataAutoCreate(ctx context.Context, b *Broker, z *authz, img *metadata.Image, req *kmsg.MetadataRequest) (*metadata.Image, map[string]error) {
	allowed := req.Version < 4 || req.AllowAutoTopicCreation
	if !allowed || !b.Config.AutoCreateTopicsEnable {
		return img, nil
	}
	var topics []controller.CreatableTopic
	want := map[string]bool{}
	outcome := map[string]error{}
	mayCreateAny := z.cluster(auth.OpCreate) == nil
	for _, rt := range req.Topics {
		if rt.Topic == nil {
			continue
		}
		name := *rt.Topic
		if _, exists := img.Topic(name); exists || want[name] || !metadataAutoCreatable(name) || z.topic(auth.OpDescribe, name) != nil {
			continue
		}
		want[name] = true
		if !mayCreateAny {
			if err := z.topic(auth.OpCreate, name); err != nil {
				outcome[name] = err
				continue
			}
		}
		topics = append(topics, controller.CreatableTopic{
			Name: name, NumPartitions: b.Config.NumPartitions, ReplicationFactor: b.Config.DefaultReplicationFactor,
		})
	}
	if len(topics) == 0 {
		return img, outcome
	}
	ctx, cancel := context.WithTimeout(ctx, metadataAutoCreateTimeout)
	defer cancel()
	resp, err := adminSubmit[controller.CreateTopicsResponse](ctx, b, kraft.CreateTopics{Request: controller.CreateTopicsRequest{Topics: topics}})
	if err != nil {
		b.Logger.Warn("metadata: auto-creating topics failed", "topics", len(topics), "err", err)
		for _, t := range topics {
			outcome[t.Name] = err
		}
		return b.Control.Image(), outcome
	}
	for _, res := range resp.Topics {
		if errors.Is(res.Err, controller.ErrTopicExists) {
			res.Err = nil // created concurrently: as good as created by us
		}
		outcome[res.Name] = res.Err
	}
	return b.Control.Image(), outcome
}

// metadataAutoCreatable: auto-creation never makes an invalid name (that
// gets INVALID_TOPIC_EXCEPTION) nor an internal topic (its coordinator
// creates it with the configs it needs).
func metadataAutoCreatable(name string) bool {
	return controller.ValidateTopicName(name) == nil && !adminIsInternalTopic(name) && name != adminMetadataTopic
}

// metadataTopicByName answers one topic requested by name. created holds
// the outcome of auto-creating the topics that did not exist.
func metadataTopicByName(img *metadata.Image, version int16, name string, created map[string]error) kmsg.MetadataResponseTopic {
	if t, ok := img.Topic(name); ok {
		return metadataTopic(img, version, t)
	}
	out := kmsg.NewMetadataResponseTopic()
	out.Topic = &name
	out.IsInternal = adminIsInternalTopic(name)
	createErr, tried := created[name]
	nameErr := controller.ValidateTopicName(name)
	switch {
	case nameErr != nil:
		out.ErrorCode = errorCode(nameErr)
	case tried && createErr != nil:
		out.ErrorCode = errorCode(createErr)
	case tried:
		// Created (by us or concurrently) but not yet in this node's
		// image: Kafka's answer for a topic being created, which clients
		// retry.
		out.ErrorCode = kerr.LeaderNotAvailable.Code
	default:
		out.ErrorCode = errorCode(fmt.Errorf("%w: topic %q", controller.ErrUnknownTopic, name))
	}
	return out
}

// metadataTopicByID answers one topic requested by id (v10+).
func metadataTopicByID(img *metadata.Image, z *authz, version int16, id metadata.UUID) kmsg.MetadataResponseTopic {
	if id == (metadata.UUID{}) {
		out := kmsg.NewMetadataResponseTopic()
		out.ErrorCode = errorCode(adminInvalidRequest("a requested topic has neither a name nor an id"))
		return out
	}
	if t, ok := img.TopicByID(id); ok {
		if err := z.topic(auth.OpDescribe, t.Name); err != nil {
			// The name is not told: an id is no way around ACLs.
			out := kmsg.NewMetadataResponseTopic()
			out.TopicID = id
			out.ErrorCode = errorCode(err)
			return out
		}
		return metadataTopic(img, version, t)
	}
	out := kmsg.NewMetadataResponseTopic()
	out.TopicID = id
	out.ErrorCode = errorCode(fmt.Errorf("%w: %x", controller.ErrUnknownTopicID, id[:]))
	return out
}

// metadataTopic describes an existing topic and all its partitions.
func metadataTopic(img *metadata.Image, version int16, t *metadata.TopicImage) kmsg.MetadataResponseTopic {
	out := kmsg.NewMetadataResponseTopic()
	name := t.Name
	out.Topic = &name
	out.TopicID = t.ID
	out.IsInternal = adminIsInternalTopic(name)
	out.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(t.Partitions))
	for i, p := range t.Partitions {
		out.Partitions = append(out.Partitions, metadataPartition(img, version, int32(i), p))
	}
	return out
}

// metadataPartition describes one partition as Kafka's KRaft brokers do:
// a leader that is not a live broker is reported as -1 with
// LEADER_NOT_AVAILABLE; offline_replicas are the replicas on brokers that
// are fenced or gone. v0 lists only live replicas and says
// REPLICA_NOT_AVAILABLE when it left one out; later versions list all.
func metadataPartition(img *metadata.Image, version int16, index int32, p *metadata.PartitionImage) kmsg.MetadataResponseTopicPartition {
	out := kmsg.NewMetadataResponseTopicPartition()
	out.Partition = index
	out.LeaderEpoch = p.LeaderEpoch
	out.Replicas, out.ISR = p.Replicas, p.ISR // the image is immutable; encoding only reads them
	for _, r := range p.Replicas {
		if !adminBrokerAlive(img, r) {
			out.OfflineReplicas = append(out.OfflineReplicas, r)
		}
	}
	if out.OfflineReplicas == nil {
		out.OfflineReplicas = []int32{}
	}
	missing := false
	if version == 0 {
		var replicasMissing, isrMissing bool
		out.Replicas, replicasMissing = metadataLiveOnly(img, p.Replicas)
		out.ISR, isrMissing = metadataLiveOnly(img, p.ISR)
		missing = replicasMissing || isrMissing
	}
	switch {
	case p.Leader < 0 || !adminBrokerAlive(img, p.Leader):
		out.Leader = -1
		out.ErrorCode = kerr.LeaderNotAvailable.Code
	case missing:
		out.Leader = p.Leader
		out.ErrorCode = kerr.ReplicaNotAvailable.Code
	default:
		out.Leader = p.Leader
	}
	return out
}

// metadataLiveOnly filters ids to the live brokers; missing reports
// whether it dropped any.
func metadataLiveOnly(img *metadata.Image, ids []int32) (live []int32, missing bool) {
	live = make([]int32, 0, len(ids))
	for _, id := range ids {
		if adminBrokerAlive(img, id) {
			live = append(live, id)
		}
	}
	return live, len(live) < len(ids)
}
