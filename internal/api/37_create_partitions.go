package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
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
	// Topics the principal may not ALTER never reach the controller.
	z := b.authz(r)
	denied := make([]error, len(req.Topics))
	for i, t := range req.Topics {
		if denied[i] = z.topic(auth.OpAlter, t.Topic); denied[i] != nil {
			continue
		}
		ct := controller.CreatePartitionsTopic{Name: t.Topic, Count: t.Count}
		if t.Assignment != nil {
			ct.Assignments = make([][]int32, len(t.Assignment))
			for i, a := range t.Assignment {
				ct.Assignments[i] = a.Replicas
			}
		}
		creq.Topics = append(creq.Topics, ct)
	}
	var cresp controller.CreatePartitionsResponse
	var err error
	if len(creq.Topics) > 0 {
		ctx, cancel := adminContext(ctx, req.TimeoutMillis)
		defer cancel()
		cresp, err = adminSubmit[controller.CreatePartitionsResponse](ctx, b, kraft.CreatePartitions{Request: creq})
		if err == nil && len(cresp.Topics) != len(creq.Topics) {
			err = fmt.Errorf("controller answered %d topics for %d", len(cresp.Topics), len(creq.Topics))
		}
	}
	next := 0 // the controller's answers, in the order of the topics sent
	for i, t := range req.Topics {
		out := kmsg.NewCreatePartitionsResponseTopic()
		out.Topic = t.Topic
		topicErr := denied[i]
		switch {
		case topicErr != nil:
		case err != nil:
			topicErr = err
		default:
			topicErr = cresp.Topics[next].Err
			next++
		}
		out.ErrorCode, out.ErrorMessage = errorCode(topicErr), errorMessage(topicErr)
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}
