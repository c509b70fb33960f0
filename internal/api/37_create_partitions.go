package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
)

// CreatePartitions v0–3, decided by the controller: grow each topic to
// count partitions, placed by the controller or by the given assignment
// of the new partitions.
var createPartitionsHandler = handler{key: 37, minVersion: 0, maxVersion: 3, serve: serveCreatePartitions}

func serveCreatePartitions(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	if len(req.Topics) == 0 {
		return resp, nil
	}
	creq := controller.CreatePartitionsRequest{ValidateOnly: req.ValidateOnly}
	for _, t := range req.Topics {
		ct := controller.CreatePartitionsTopic{Name: t.Topic, Count: t.Count}
		if t.Assignment != nil {
			ct.Assignments = make([][]int32, len(t.Assignment))
			for i, a := range t.Assignment {
				ct.Assignments[i] = a.Replicas
			}
		}
		creq.Topics = append(creq.Topics, ct)
	}
	ctx, cancel := adminContext(ctx, req.TimeoutMillis)
	defer cancel()
	cresp, err := adminSubmit[controller.CreatePartitionsResponse](ctx, b, kraft.CreatePartitions{Request: creq})
	if err == nil && len(cresp.Topics) != len(req.Topics) {
		err = fmt.Errorf("controller answered %d topics for %d", len(cresp.Topics), len(req.Topics))
	}
	for i, t := range req.Topics {
		out := kmsg.NewCreatePartitionsResponseTopic()
		out.Topic = t.Topic
		topicErr := err
		if err == nil {
			topicErr = cresp.Topics[i].Err
		}
		out.ErrorCode, out.ErrorMessage = errorCode(topicErr), errorMessage(topicErr)
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}
