package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/metadata"
)

// DeleteTopics v0–6, decided by the controller. v0–5 name topics; v6 names
// each by name or by id, never both.
var deleteTopicsHandler = handler{key: 20, minVersion: 0, maxVersion: 6, serve: serveDeleteTopics}

// deleteTopicsItem is one requested topic and its answer slot.
type deleteTopicsItem struct {
	name *string
	id   metadata.UUID
	err  error // set when the edge rejects it
}

func serveDeleteTopics(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	items := deleteTopicsItems(req)
	deleteTopicsAuthorize(b, r, items)

	// The controller answers the names first, then the ids, each in the
	// order sent.
	var creq controller.DeleteTopicsRequest
	var byName, byID []int
	for i, it := range items {
		switch {
		case it.err != nil:
		case it.name != nil:
			creq.Names = append(creq.Names, *it.name)
			byName = append(byName, i)
		default:
			creq.IDs = append(creq.IDs, it.id)
			byID = append(byID, i)
		}
	}
	results := make([]*controller.DeleteTopicResult, len(items))
	if len(byName)+len(byID) > 0 {
		ctx, cancel := adminContext(ctx, req.TimeoutMillis)
		defer cancel()
		cresp, err := adminSubmit[controller.DeleteTopicsResponse](ctx, b, kraft.DeleteTopics{Request: creq})
		if err == nil && len(cresp.Topics) != len(byName)+len(byID) {
			err = fmt.Errorf("controller answered %d topics for %d", len(cresp.Topics), len(byName)+len(byID))
		}
		for j, i := range append(byName, byID...) {
			if err != nil {
				items[i].err = err
			} else {
				results[i] = &cresp.Topics[j]
			}
		}
	}

	for i, it := range items {
		out := kmsg.NewDeleteTopicsResponseTopic()
		out.Topic, out.TopicID = it.name, it.id
		if res := results[i]; res != nil {
			if res.Name != "" {
				name := res.Name
				out.Topic = &name
			}
			if res.TopicID != (metadata.UUID{}) {
				out.TopicID = res.TopicID
			}
			it.err = res.Err
		}
		out.ErrorCode, out.ErrorMessage = errorCode(it.err), errorMessage(it.err)
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}

// deleteTopicsItems lists the requested topics in request order, with the
// edge's verdict on those that name a topic by both name and id, or by
// neither (Kafka rejects both).
// deleteTopicsAuthorize refuses the topics the principal may not delete
// (DELETE on the topic; by id, on the topic the id names). An id that
// names no topic is left to the controller's UNKNOWN_TOPIC_ID.
func deleteTopicsAuthorize(b *Broker, r *Request, items []deleteTopicsItem) {
	z := b.authz(r)
	if !z.enabled() {
		return
	}
	img := b.Control.Image()
	for i := range items {
		it := &items[i]
		if it.err != nil {
			continue
		}
		if it.name != nil {
			it.err = z.topic(auth.OpDelete, *it.name)
		} else if t, ok := img.TopicByID(it.id); ok {
			it.err = z.topic(auth.OpDelete, t.Name)
		}
	}
}

func deleteTopicsItems(req *kmsg.DeleteTopicsRequest) []deleteTopicsItem {
	if req.Version < 6 {
		items := make([]deleteTopicsItem, len(req.TopicNames))
		for i := range req.TopicNames {
			items[i].name = &req.TopicNames[i]
		}
		return items
	}
	items := make([]deleteTopicsItem, len(req.Topics))
	for i, t := range req.Topics {
		it := &items[i]
		it.name, it.id = t.Topic, metadata.UUID(t.TopicID)
		hasID := it.id != (metadata.UUID{})
		switch {
		case t.Topic != nil && hasID:
			it.err = adminInvalidRequest("you may not specify both topic name and topic id")
		case t.Topic == nil && !hasID:
			it.err = adminInvalidRequest("neither topic name nor id were specified")
		}
	}
	return items
}
