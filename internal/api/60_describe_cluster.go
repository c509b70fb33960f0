package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// DescribeCluster v0–1: the live brokers, the cluster id and the
// controller clients should send controller-bound requests to. v1 asks
// for an endpoint type; a broker serves only brokers (1), as Kafka's do.
var describeClusterHandler = handler{key: 60, minVersion: 0, maxVersion: 1, serve: serveDescribeCluster}

// describeClusterBrokers is endpoint type 1: the broker endpoints
// (2 would be the controllers, which only a controller listener serves).
const describeClusterBrokers int8 = 1

func serveDescribeCluster(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = describeClusterBrokers
	if req.Version >= 1 && req.EndpointType != describeClusterBrokers {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "a broker only describes the broker endpoint type (1)"
		resp.ErrorMessage = &msg
		return resp, nil
	}
	z := b.authz(r)
	if err := z.cluster(auth.OpDescribe); err != nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
		return resp, nil
	}
	img := b.Control.Image()
	resp.ClusterID = b.ClusterID
	resp.ControllerID = adminControllerID(b, img)
	// Asked for, the operations the principal may perform (every one the
	// cluster supports without an authorizer, as Kafka answers); else the
	// schema's "not requested" value.
	resp.ClusterAuthorizedOperations = -2147483648
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = z.operations(auth.ResourceCluster, auth.ClusterName, clusterAllOperations)
	}
	for _, bi := range adminAliveBrokers(img) {
		host, port, _ := adminEndpoint(bi, requestListener(ctx))
		resp.Brokers = append(resp.Brokers, kmsg.DescribeClusterResponseBroker{NodeID: bi.ID, Host: host, Port: port, Rack: adminRack(bi)})
	}
	return resp, nil
}
