package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
)

// Heartbeat v0–4 (kafka-go sends v0). It keeps a member's session alive
// and tells it, with REBALANCE_IN_PROGRESS, to rejoin. v3 adds
// group.instance.id.
var heartbeatHandler = handler{key: 12, minVersion: 0, maxVersion: 4, serve: serveHeartbeat}

func serveHeartbeat(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	err := b.authz(r).group(auth.OpRead, req.Group)
	var g Groups
	if err == nil {
		g, err = groups(b)
	}
	if err == nil {
		err = g.Heartbeat(ctx, coord.HeartbeatRequest{
			GroupID:         req.Group,
			GenerationID:    req.Generation,
			MemberID:        req.MemberID,
			GroupInstanceID: groupString(req.InstanceID),
		})
	}
	if err != nil {
		resp.ErrorCode = groupErrorCode(err)
	}
	return resp, nil
}
