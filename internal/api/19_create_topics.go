package api

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
)

// CreateTopics v0–7, decided by the controller (forwarded from any broker,
// KIP-590). Each topic stands alone: a bad one gets its error and the
// others are still created. v5+ also returns the partition count,
// replication factor and configs the topic got (or would get, with
// validate_only), v7+ its id.
var createTopicsHandler = handler{key: 19, minVersion: 0, maxVersion: 7, serve: serveCreateTopics}

func serveCreateTopics(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(req.Topics))
	for i, t := range req.Topics {
		resp.Topics[i] = kmsg.NewCreateTopicsResponseTopic()
		resp.Topics[i].Topic = t.Topic
	}

	// The edge rejects what the controller never sees: duplicates (so that
	// every copy fails even when one copy fails here for another reason),
	// the metadata log's name, and null config values.
	counts := map[string]int{}
	for _, t := range req.Topics {
		counts[t.Topic]++
	}
	creq := controller.CreateTopicsRequest{ValidateOnly: req.ValidateOnly}
	var sent []int // request index of each topic sent to the controller
	z := b.authz(r)
	mayCreateAny := z.cluster(auth.OpCreate) == nil
	for i, t := range req.Topics {
		if err := createTopicsPrecheck(z, mayCreateAny, t, counts[t.Topic]); err != nil {
			createTopicsFail(&resp.Topics[i], err)
			continue
		}
		creq.Topics = append(creq.Topics, createTopicsConvert(t))
		sent = append(sent, i)
	}
	if len(sent) == 0 {
		return resp, nil
	}

	ctx, cancel := adminContext(ctx, req.TimeoutMillis)
	defer cancel()
	cresp, err := adminSubmit[controller.CreateTopicsResponse](ctx, b, kraft.CreateTopics{Request: creq})
	if err == nil && len(cresp.Topics) != len(sent) {
		err = fmt.Errorf("controller answered %d topics for %d", len(cresp.Topics), len(sent))
	}
	if err != nil {
		for _, i := range sent {
			createTopicsFail(&resp.Topics[i], err)
		}
		return resp, nil
	}
	img := b.Control.Image()
	for j, i := range sent {
		res, out := cresp.Topics[j], &resp.Topics[i]
		if res.Err != nil {
			createTopicsFail(out, res.Err)
			continue
		}
		out.TopicID = res.TopicID
		out.NumPartitions, out.ReplicationFactor = res.NumPartitions, res.ReplicationFactor
		if err := z.topic(auth.OpDescribeConfigs, out.Topic); err != nil {
			// Created, but its configs are withheld, as Kafka does.
			out.ConfigErrorCode = errorCode(err)
			continue
		}
		overrides := make(map[string]string, len(creq.Topics[j].Configs))
		for _, c := range creq.Topics[j].Configs {
			overrides[c.Name] = c.Value
		}
		for _, c := range describeTopicConfigs(b, img, overrides) {
			out.Configs = append(out.Configs, kmsg.CreateTopicsResponseTopicConfig{
				Name: c.name, Value: c.value(), ReadOnly: c.readOnly, Source: int8(c.source()), IsSensitive: c.sensitive,
			})
		}
	}
	return resp, nil
}

// createTopicsPrecheck finds what is wrong with t before the controller
// sees it; count is how often its name appears in the request. It also
// authorizes: CREATE on the cluster allows any topic, otherwise CREATE on
// the topic itself is needed, as in Kafka.
func createTopicsPrecheck(z *authz, mayCreateAny bool, t kmsg.CreateTopicsRequestTopic, count int) error {
	if count > 1 {
		return adminInvalidRequest("topic %q appears %d times in the request", t.Topic, count)
	}
	if !mayCreateAny {
		if err := z.topic(auth.OpCreate, t.Topic); err != nil {
			return err
		}
	}
	if t.Topic == adminMetadataTopic {
		return adminInvalidRequest("creation of internal topic %s is prohibited", adminMetadataTopic)
	}
	var nulls []string
	for _, c := range t.Configs {
		if c.Value == nil {
			nulls = append(nulls, c.Name)
		}
	}
	if len(nulls) > 0 {
		return fmt.Errorf("%w: null value not supported for topic configs: %s", controller.ErrInvalidConfig, strings.Join(nulls, ","))
	}
	return nil
}

func createTopicsConvert(t kmsg.CreateTopicsRequestTopic) controller.CreatableTopic {
	ct := controller.CreatableTopic{Name: t.Topic, NumPartitions: t.NumPartitions, ReplicationFactor: t.ReplicationFactor}
	for _, a := range t.ReplicaAssignment {
		ct.Assignments = append(ct.Assignments, controller.ReplicaAssignment{Partition: a.Partition, Replicas: a.Replicas})
	}
	for _, c := range t.Configs {
		ct.Configs = append(ct.Configs, controller.ConfigEntry{Name: c.Name, Value: *c.Value})
	}
	return ct
}

func createTopicsFail(out *kmsg.CreateTopicsResponseTopic, err error) {
	out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
}
