package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
)

// ShareGroupDescribe v1 (KIP-932, Kafka 4.1): each share group's state,
// epochs, assignor and members with their subscriptions and assignments.
// A group that is not a share group here is GROUP_ID_NOT_FOUND, as Kafka
// answers.
var shareGroupDescribeHandler = handler{key: 77, minVersion: 1, maxVersion: 1, serve: serveShareGroupDescribe}

// shareAssignorName is the only server-side assignor of share groups.
const shareAssignorName = "simple"

func serveShareGroupDescribe(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ShareGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
	img := b.Control.Image()
	for _, id := range req.GroupIDs {
		out := kmsg.NewShareGroupDescribeResponseGroup()
		out.GroupID = id
		if denied := b.authz(r).group(auth.OpDescribe, id); denied != nil {
			out.ErrorCode, out.ErrorMessage = errorCode(denied), errorMessage(denied)
			resp.Groups = append(resp.Groups, out)
			continue
		}
		err := checkShareCoordinator(ctx, b, id)
		if err == nil && b.Shares == nil {
			err = errNoShareCoordinator
		}
		if err != nil {
			out.ErrorCode, out.ErrorMessage = groupErrorCode(err), errorMessage(err)
			resp.Groups = append(resp.Groups, out)
			continue
		}
		d, ok := b.Shares.Describe(id, img)
		if !ok {
			err := fmt.Errorf("%w: %q is not a share group", coord.ErrGroupIDNotFound, id)
			out.ErrorCode, out.ErrorMessage = groupErrorCode(err), errorMessage(err)
			resp.Groups = append(resp.Groups, out)
			continue
		}
		out.GroupState, out.GroupEpoch, out.AssignmentEpoch, out.Assignor = d.State, d.Epoch, d.Epoch, shareAssignorName
		if req.IncludeAuthorizedOperations {
			out.AuthorizedOperations = groupAllOperations
		}
		for _, m := range d.Members {
			rm := kmsg.NewShareGroupDescribeResponseGroupMember()
			rm.MemberID, rm.MemberEpoch, rm.ClientID, rm.ClientHost = m.ID, m.Epoch, m.ClientID, m.ClientHost
			if m.RackID != "" {
				rack := m.RackID
				rm.RackID = &rack
			}
			rm.SubscribedTopicNames = m.SubscribedTopicNames
			for topic, partitions := range m.Assignment {
				t, ok := img.Topic(topic)
				if !ok {
					continue
				}
				tp := kmsg.NewShareGroupDescribeResponseGroupMemberAssignmentTopicPartition()
				tp.TopicID, tp.Topic, tp.Partitions = t.ID, topic, partitions
				rm.Assignment.TopicPartitions = append(rm.Assignment.TopicPartitions, tp)
			}
			out.Members = append(out.Members, rm)
		}
		resp.Groups = append(resp.Groups, out)
	}
	return resp, nil
}
