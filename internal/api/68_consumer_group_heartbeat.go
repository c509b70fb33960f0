package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
)

// ConsumerGroupHeartbeat v0–1, the consumer group protocol of KIP-848, at
// the versions Kafka 4.1 serves. v0 lets the coordinator choose a joining
// member's id; from v1 the client generates it (franz-go needs v1 before
// it uses the protocol at all) and may subscribe by regex
// (SubscribedTopicRegex). The coordinator assigns partitions with the
// uniform or range assignor (group.consumer.assignors).
var consumerGroupHeartbeatHandler = handler{key: 68, minVersion: 0, maxVersion: 1, serve: serveConsumerGroupHeartbeat}

// ConsumerGroups is what the KIP-848 handlers need of the group
// coordinator (*coord.Coordinator satisfies it); a Groups that does not
// implement it answers as a broker without a coordinator.
type ConsumerGroups interface {
	ConsumerGroupHeartbeat(ctx context.Context, req coord.ConsumerHeartbeatRequest) (coord.ConsumerHeartbeatResult, error)
	ConsumerGroupDescribe(ctx context.Context, groupIDs []string) []coord.ConsumerGroupDescription
}

var _ ConsumerGroups = (*coord.Coordinator)(nil)

// consumerGroups returns the broker's coordinator as ConsumerGroups.
func consumerGroups(b *Broker) (ConsumerGroups, error) {
	g, err := groups(b)
	if err != nil {
		return nil, err
	}
	cg, ok := g.(ConsumerGroups)
	if !ok {
		return nil, errNoGroupCoordinator
	}
	return cg, nil
}

func serveConsumerGroupHeartbeat(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ConsumerGroupHeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	if err := consumerGroupHeartbeatAuthorize(b.authz(r), req); err != nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
		return resp, nil
	}
	creq := coord.ConsumerHeartbeatRequest{
		GroupID: req.Group, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch, InstanceID: groupString(req.InstanceID),
		RackID: req.RackID, RebalanceTimeoutMs: req.RebalanceTimeoutMillis, SubscribedTopicNames: req.SubscribedTopicNames,
		ServerAssignor: req.ServerAssignor, ClientID: groupString(r.Header.ClientID), ClientHost: groupClientHost(r.ClientAddr),
	}
	if req.Version >= 1 {
		creq.SubscribedTopicRegex = req.SubscribedTopicRegex
	}
	if req.Topics != nil {
		creq.OwnedTopics = make([]coord.ConsumerTopicPartitions, 0, len(req.Topics))
		for _, t := range req.Topics {
			creq.OwnedTopics = append(creq.OwnedTopics, coord.ConsumerTopicPartitions{TopicID: t.TopicID, Partitions: t.Partitions})
		}
	}
	if creq.MemberID == "" {
		if req.Version >= 1 || req.MemberEpoch != 0 {
			err := fmt.Errorf("member id is required from ConsumerGroupHeartbeat v1: %w", coord.ErrInvalidRequest)
			resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
			return resp, nil
		}
		creq.MemberID = newConsumerMemberID()
	}
	g, err := consumerGroups(b)
	if err == nil && req.MemberEpoch == 0 {
		if serr := errShareGroupID(b, req.Group); serr != nil {
			err = fmt.Errorf("%w: %w", coord.ErrGroupIDNotFound, serr)
		}
	}
	var res coord.ConsumerHeartbeatResult
	if err == nil {
		res, err = g.ConsumerGroupHeartbeat(ctx, creq)
	}
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = groupErrorCode(err), errorMessage(err)
		return resp, nil
	}
	resp.MemberID = &res.MemberID
	resp.MemberEpoch = res.MemberEpoch
	resp.HeartbeatIntervalMillis = res.HeartbeatIntervalMs
	if res.HasAssignment {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		a.Topics = make([]kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic, 0, len(res.Assignment))
		for _, t := range res.Assignment {
			at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			at.TopicID, at.Partitions = t.TopicID, t.Partitions
			a.Topics = append(a.Topics, at)
		}
		resp.Assignment = &a
	}
	return resp, nil
}

// newConsumerMemberID is a member id for a v0 join: a random UUID in
// URL-safe base64, the shape KIP-848 clients generate themselves from v1.
func newConsumerMemberID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// consumerGroupHeartbeatAuthorize asks READ on the group and DESCRIBE on
// each topic the member subscribes to by name, as Kafka does.
func consumerGroupHeartbeatAuthorize(z *authz, req *kmsg.ConsumerGroupHeartbeatRequest) error {
	if err := z.group(auth.OpRead, req.Group); err != nil {
		return err
	}
	for _, topic := range req.SubscribedTopicNames {
		if err := z.topic(auth.OpDescribe, topic); err != nil {
			return err
		}
	}
	return nil
}
