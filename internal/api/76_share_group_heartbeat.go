package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/share"
)

// ShareGroupHeartbeat v1 (KIP-932, Kafka 4.1; v0 was 4.0's early access and
// was removed): a share group member joins (epoch 0, with its own member
// id and its subscribed topics), heartbeats, or leaves (epoch -1). The
// answer carries the member's epoch and, when it changed or the member sent
// its subscription, its assignment by topic id.
var shareGroupHeartbeatHandler = handler{key: 76, minVersion: 1, maxVersion: 1, serve: serveShareGroupHeartbeat}

func serveShareGroupHeartbeat(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ShareGroupHeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
	fail := func(err error) (kmsg.Response, error) {
		resp.ErrorCode, resp.ErrorMessage = groupErrorCode(err), errorMessage(err)
		return resp, nil
	}
	if err := shareGroupAuthorize(b.authz(r), req.GroupID, req.SubscribedTopicNames); err != nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
		return resp, nil
	}
	s, err := shares(b)
	if err != nil {
		return fail(err)
	}
	if err := checkShareCoordinator(ctx, b, req.GroupID); err != nil {
		return fail(err)
	}
	if err := checkNotOtherGroupType(ctx, b, s, req.GroupID); err != nil {
		return fail(err)
	}
	hb := sharegroup.Heartbeat{MemberID: req.MemberID, MemberEpoch: req.MemberEpoch,
		SubscribedTopicNames: req.SubscribedTopicNames, ClientID: stringOrEmpty(r.Header.ClientID),
		ClientHost: groupClientHost(r.ClientAddr)}
	if req.RackID != nil {
		hb.RackID = *req.RackID
	}
	res, err := s.Heartbeat(req.GroupID, hb, b.Control.Image())
	if err != nil {
		return fail(err)
	}
	resp.MemberID = &req.MemberID
	resp.MemberEpoch = res.MemberEpoch
	resp.HeartbeatIntervalMillis = int32(res.HeartbeatIntervalMs)
	if res.Assignment != nil {
		// The assignment may come from a newer image than the one passed
		// (Heartbeat assigns from the newest it saw): its topic ids come
		// from one read now, as new at least.
		img := b.Control.Image()
		a := kmsg.NewShareGroupHeartbeatResponseAssignment()
		for topic, partitions := range res.Assignment {
			t, ok := img.Topic(topic)
			if !ok {
				continue
			}
			tp := kmsg.NewShareGroupHeartbeatResponseAssignmentTopicPartition()
			tp.TopicID, tp.Partitions = t.ID, partitions
			a.TopicPartitions = append(a.TopicPartitions, tp)
		}
		resp.Assignment = &a
	}
	return resp, nil
}

func stringOrEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// checkNotOtherGroupType refuses a share group under the id of a consumer
// group (one with members or committed offsets), as Kafka does: the two
// would otherwise share a name in ListGroups and DescribeGroups.
func checkNotOtherGroupType(ctx context.Context, b *Broker, s *share.Coordinator, groupID string) error {
	if s.IsShareGroup(groupID) {
		return nil
	}
	g, err := groups(b)
	if err != nil {
		return err
	}
	for _, d := range g.DescribeGroups(ctx, []string{groupID}) {
		if d.Err == nil && d.State != "Dead" {
			return fmt.Errorf("%w: group %q is a %s group, not a share group", coord.ErrGroupIDNotFound, groupID, groupTypeName(d.ProtocolType))
		}
	}
	return nil
}

func groupTypeName(protocolType string) string {
	if protocolType == "" {
		return "consumer"
	}
	return protocolType
}

// shareGroupAuthorize asks READ on the share group and READ on each topic
// (the share APIs name topics; a heartbeat its subscription), as Kafka's
// share APIs do. The fetch and acknowledge requests refuse the whole
// request for one topic not allowed, where Kafka answers per partition:
// stricter, never an unauthorized read.
func shareGroupAuthorize(z *authz, group string, topics []string) error {
	if err := z.group(auth.OpRead, group); err != nil {
		return err
	}
	for _, topic := range topics {
		if err := z.topic(auth.OpRead, topic); err != nil {
			return err
		}
	}
	return nil
}

// shareTopicsByID names the topics of a share request, those the image
// knows, for shareGroupAuthorize.
func shareTopicsByID(b *Broker, ids []metadata.UUID) []string {
	img := b.Control.Image()
	names := make([]string, 0, len(ids))
	for _, id := range ids {
		if t, ok := img.TopicByID(id); ok {
			names = append(names, t.Name)
		}
	}
	return names
}
