package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/metadata"
)

// ConsumerGroupDescribe v0–1 (Kafka 4.1's range): consumer-protocol groups
// with their epochs, assignor and members (member epoch, subscription,
// current and target assignment). v1 adds the member type: classic (0)
// for a classic member of a consumer group (a mixed group), else
// consumer (1). A classic or unknown group is GROUP_ID_NOT_FOUND, as in
// Kafka.
var consumerGroupDescribeHandler = handler{key: 69, minVersion: 0, maxVersion: 1, serve: serveConsumerGroupDescribe}

// ConsumerGroupDescribe v1's member types.
const (
	consumerMemberTypeClassic  int8 = 0
	consumerMemberTypeConsumer int8 = 1
)

func serveConsumerGroupDescribe(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	resp.Groups = make([]kmsg.ConsumerGroupDescribeResponseGroup, 0, len(req.Groups))
	g, err := consumerGroups(b)
	if err != nil {
		for _, id := range req.Groups {
			out := kmsg.NewConsumerGroupDescribeResponseGroup()
			out.Group, out.ErrorCode, out.ErrorMessage = id, groupErrorCode(err), errorMessage(err)
			resp.Groups = append(resp.Groups, out)
		}
		return resp, nil
	}
	// Groups the principal may not describe never reach the coordinator.
	z := b.authz(r)
	denied := make([]error, len(req.Groups))
	allowed := make([]string, 0, len(req.Groups))
	for i, id := range req.Groups {
		if denied[i] = z.group(auth.OpDescribe, id); denied[i] == nil {
			allowed = append(allowed, id)
		}
	}
	descs := g.ConsumerGroupDescribe(ctx, allowed)
	if len(descs) != len(allowed) {
		return nil, fmt.Errorf("coordinator described %d of %d groups", len(descs), len(allowed))
	}
	img := b.Control.Image()
	for i, id := range req.Groups {
		if denied[i] != nil {
			out := kmsg.NewConsumerGroupDescribeResponseGroup()
			out.Group, out.ErrorCode, out.ErrorMessage = id, errorCode(denied[i]), errorMessage(denied[i])
			resp.Groups = append(resp.Groups, out)
			continue
		}
		out := consumerGroupDescribeGroup(img, descs[0], req.IncludeAuthorizedOperations)
		if req.IncludeAuthorizedOperations {
			out.AuthorizedOperations = z.operations(auth.ResourceGroup, id, groupAllOperations)
		}
		resp.Groups = append(resp.Groups, out)
		descs = descs[1:]
	}
	return resp, nil
}

func consumerGroupDescribeGroup(img *metadata.Image, d coord.ConsumerGroupDescription, withOperations bool) kmsg.ConsumerGroupDescribeResponseGroup {
	out := kmsg.NewConsumerGroupDescribeResponseGroup()
	out.Group = d.GroupID
	if d.Err != nil {
		out.ErrorCode, out.ErrorMessage = groupErrorCode(d.Err), errorMessage(d.Err)
		return out
	}
	out.State, out.Epoch, out.AssignmentEpoch, out.AssignorName = d.State, d.GroupEpoch, d.AssignmentEpoch, d.Assignor
	if withOperations {
		out.AuthorizedOperations = groupAllOperations
	}
	for _, m := range d.Members {
		rm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		rm.MemberID, rm.InstanceID, rm.RackID = m.MemberID, groupNullable(m.InstanceID), groupNullable(m.RackID)
		rm.MemberEpoch, rm.ClientID, rm.ClientHost = m.MemberEpoch, m.ClientID, m.ClientHost
		rm.SubscribedTopics = m.SubscribedTopicNames
		if rm.SubscribedTopics == nil {
			rm.SubscribedTopics = []string{}
		}
		rm.SubscribedTopicRegex = groupNullable(m.SubscribedTopicRegex)
		rm.Assignment.TopicPartitions = consumerAssignmentTopics(img, m.Assignment)
		rm.TargetAssignment.TopicPartitions = consumerAssignmentTopics(img, m.TargetAssignment)
		rm.MemberType = consumerMemberTypeConsumer
		if m.Classic {
			rm.MemberType = consumerMemberTypeClassic
		}
		out.Members = append(out.Members, rm)
	}
	return out
}

// consumerAssignmentTopics names each topic id from the image; a topic
// deleted since it was assigned keeps its id and an empty name.
func consumerAssignmentTopics(img *metadata.Image, tps []coord.ConsumerTopicPartitions) []kmsg.AssignmentTopicPartition {
	out := make([]kmsg.AssignmentTopicPartition, 0, len(tps))
	for _, t := range tps {
		at := kmsg.NewAssignmentTopicPartition()
		at.TopicID, at.Partitions = t.TopicID, t.Partitions
		if img != nil {
			if ti, ok := img.TopicByID(metadata.UUID(t.TopicID)); ok {
				at.Topic = ti.Name
			}
		}
		out = append(out, at)
	}
	return out
}
