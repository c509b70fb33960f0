package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
)

// JoinGroup v0–9. kafka-python sends v2, kafka-go v1/v2, librdkafka needs
// v0 in range. The call blocks until the group's join phase completes:
// every known member rejoined or the rebalance timeout passed. v1 adds the
// rebalance timeout (v0 uses the session timeout, as Kafka does), v4
// requires a known member id (KIP-394: a first join gets
// MEMBER_ID_REQUIRED with the id to rejoin with), v5 static membership
// (KIP-345), v7 returns the protocol type, v8 takes a reason, v9 may tell a
// static leader to skip assignment (KIP-814). The id of a share group is
// INCONSISTENT_GROUP_PROTOCOL, as in Kafka (share_group_ids.go).
var joinGroupHandler = handler{key: 11, minVersion: 0, maxVersion: 9, serve: serveJoinGroup}

func serveJoinGroup(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.JoinGroupRequest)
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	if err := b.authz(r).group(auth.OpRead, req.Group); err != nil {
		joinGroupFail(resp, req.MemberID, err)
		return resp, nil
	}
	g, err := groups(b)
	if err != nil {
		joinGroupFail(resp, req.MemberID, err)
		return resp, nil
	}
	if err := errShareGroupID(b, req.Group); err != nil {
		// Kafka answers UNKNOWN_MEMBER_ID (empty) as the member id here.
		joinGroupFail(resp, "", fmt.Errorf("%w: %w", coord.ErrInconsistentGroupProtocol, err))
		return resp, nil
	}
	jreq := joinGroupConvert(req, r)
	ctx, cancel := groupJoinContext(ctx, jreq.RebalanceTimeoutMs)
	defer cancel()
	res, err := g.Join(ctx, jreq)
	if err != nil {
		memberID := req.MemberID
		if errors.Is(err, coord.ErrMemberIDRequired) {
			memberID = res.MemberID
		}
		joinGroupFail(resp, memberID, err)
		return resp, nil
	}
	resp.Generation = res.GenerationID
	resp.ProtocolType = &res.ProtocolType
	resp.Protocol = &res.ProtocolName
	resp.LeaderID, resp.MemberID = res.LeaderID, res.MemberID
	resp.SkipAssignment = res.SkipAssignment
	resp.Members = make([]kmsg.JoinGroupResponseMember, 0, len(res.Members))
	for _, m := range res.Members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, groupNullable(m.GroupInstanceID), m.Metadata
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}

func joinGroupConvert(req *kmsg.JoinGroupRequest, r *Request) coord.JoinRequest {
	jreq := coord.JoinRequest{
		GroupID:                req.Group,
		MemberID:               req.MemberID,
		GroupInstanceID:        groupString(req.InstanceID),
		ProtocolType:           req.ProtocolType,
		Protocols:              make([]coord.Protocol, 0, len(req.Protocols)),
		SessionTimeoutMs:       req.SessionTimeoutMillis,
		RebalanceTimeoutMs:     req.RebalanceTimeoutMillis,
		RequireKnownMemberID:   req.Version >= 4,
		SupportsSkipAssignment: req.Version >= 9,
		Reason:                 groupString(req.Reason),
		ClientID:               groupString(r.Header.ClientID),
		ClientHost:             groupClientHost(r.ClientAddr),
	}
	if req.Version == 0 {
		jreq.RebalanceTimeoutMs = req.SessionTimeoutMillis
	}
	metadata := make([][]byte, len(req.Protocols))
	for i, p := range req.Protocols {
		metadata[i] = p.Metadata
	}
	metadata = groupDetach(metadata)
	for i, p := range req.Protocols {
		jreq.Protocols = append(jreq.Protocols, coord.Protocol{Name: p.Name, Metadata: metadata[i]})
	}
	return jreq
}

// joinGroupFail is Kafka's JoinGroup error response: generation -1, no
// protocol, no leader, no members, the member id the client sent (or the
// one it must rejoin with).
func joinGroupFail(resp *kmsg.JoinGroupResponse, memberID string, err error) {
	resp.ErrorCode = groupErrorCode(err)
	resp.Generation = -1
	resp.ProtocolType, resp.Protocol = nil, nil
	resp.LeaderID, resp.MemberID = "", memberID
	resp.Members = nil
}
