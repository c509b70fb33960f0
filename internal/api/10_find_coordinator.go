package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
)

// FindCoordinator v0–6. v0 (kafka-python, librdkafka) names a group; v1+
// adds the key type; v4+ (KIP-699) batches keys, each answered on its own.
// The coordinator of a group is the leader of its __consumer_offsets
// partition, wherever that is: any broker answers, as in Kafka. While the
// topic is being created or the partition loaded the answer is
// COORDINATOR_NOT_AVAILABLE, which clients retry.
//
// A transaction coordinator (key type 1) is the leader of the
// transactional id's __transaction_state partition, found the same way.
// A share coordinator (key type 2, v6) is the leader of the
// __share_group_state partition of a "group:topicId:partition" key, found
// by the share partition leaders that persist share state (KIP-932); it
// needs CLUSTER_ACTION, as in Kafka.
var findCoordinatorHandler = handler{key: 10, minVersion: 0, maxVersion: 6, serve: serveFindCoordinator}

// The coordinator key types.
const (
	coordinatorKeyGroup       int8 = 0
	coordinatorKeyTransaction int8 = 1
	coordinatorKeyShare       int8 = 2
)

func serveFindCoordinator(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if req.Version < 4 {
		c := findCoordinatorOne(ctx, b, b.authz(r), req.CoordinatorType, req.CoordinatorKey)
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
		return resp, nil
	}
	resp.Coordinators = make([]kmsg.FindCoordinatorResponseCoordinator, 0, len(req.CoordinatorKeys))
	for _, key := range req.CoordinatorKeys {
		resp.Coordinators = append(resp.Coordinators, findCoordinatorOne(ctx, b, b.authz(r), req.CoordinatorType, key))
	}
	return resp, nil
}

// findCoordinatorOne answers one key: the coordinator's address, or an
// error with node -1 (Kafka's "no node").
func findCoordinatorOne(ctx context.Context, b *Broker, z *authz, keyType int8, key string) kmsg.FindCoordinatorResponseCoordinator {
	out := kmsg.NewFindCoordinatorResponseCoordinator()
	out.Key = key
	nodeID, host, port, err := findCoordinatorNode(ctx, b, z, keyType, key)
	if err != nil {
		out.ErrorCode, out.ErrorMessage = groupErrorCode(err), errorMessage(err)
		out.NodeID, out.Host, out.Port = -1, "", -1
		return out
	}
	out.NodeID, out.Host, out.Port = nodeID, host, port
	return out
}

// findCoordinatorNode needs DESCRIBE on the group or transactional id,
// as in Kafka.
func findCoordinatorNode(ctx context.Context, b *Broker, z *authz, keyType int8, key string) (int32, string, int32, error) {
	var nodeID int32
	switch keyType {
	case coordinatorKeyGroup:
		if err := z.group(auth.OpDescribe, key); err != nil {
			return 0, "", 0, err
		}
		g, err := groups(b)
		if err != nil {
			return 0, "", 0, err
		}
		if nodeID, err = g.FindCoordinator(ctx, key); err != nil {
			return 0, "", 0, fmt.Errorf("coordinator for group %q: %w", key, err)
		}
	case coordinatorKeyTransaction:
		if err := z.transactionalID(auth.OpDescribe, key); err != nil {
			return 0, "", 0, err
		}
		t, err := txns(b)
		if err != nil {
			return 0, "", 0, err
		}
		if nodeID, err = t.FindCoordinator(ctx, key); err != nil {
			return 0, "", 0, fmt.Errorf("coordinator for transactional id %q: %w", key, err)
		}
	case coordinatorKeyShare:
		if err := z.cluster(auth.OpClusterAction); err != nil {
			return 0, "", 0, err
		}
		if b.ShareStates == nil {
			return 0, "", 0, errNoShareStateCoordinator
		}
		var err error
		if nodeID, err = b.ShareStates.FindCoordinator(ctx, key); err != nil {
			return 0, "", 0, fmt.Errorf("share coordinator for %q: %w", key, err)
		}
	default:
		return 0, "", 0, fmt.Errorf("%w: unknown coordinator key type %d", coord.ErrInvalidRequest, keyType)
	}
	img := b.Control.Image()
	if nodeID == b.NodeID {
		// This broker is the coordinator, fenced or not; its own
		// registration says where each of its listeners is.
		if bi, ok := img.Broker(nodeID); ok {
			host, port, _ := adminEndpoint(bi, requestListener(ctx))
			return nodeID, host, port, nil
		}
		return b.NodeID, b.Host, b.Port, nil
	}
	if bi, ok := img.Broker(nodeID); ok && adminBrokerAlive(img, nodeID) {
		host, port, _ := adminEndpoint(bi, requestListener(ctx))
		return nodeID, host, port, nil
	}
	return 0, "", 0, fmt.Errorf("%w: coordinator %d of group %q is not a live broker", coord.ErrCoordinatorNotAvailable, nodeID, key)
}
