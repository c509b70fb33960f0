package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeCluster(t *testing.T) {
	h := newAdminHarness(t, Config{})
	adminRegister(t, h, 2, "r2") // registered but fenced: not listed
	for _, v := range []int16{0, 1} {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.Version = v
		resp := h.do(req).(*kmsg.DescribeClusterResponse)
		adminWantCode(t, "describe cluster", resp.ErrorCode, nil)
		if resp.ClusterID != "test-cluster" || resp.ControllerID != 1 || resp.ClusterAuthorizedOperations != -2147483648 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 || resp.Brokers[0].Host != "127.0.0.1" || resp.Brokers[0].Port != 9092 || resp.Brokers[0].Rack != nil {
			t.Fatalf("v%d brokers %+v", v, resp.Brokers)
		}
		if v == 1 && resp.EndpointType != 1 {
			t.Fatalf("v1 endpoint type %d", resp.EndpointType)
		}
	}

	adminHeartbeat(t, h, 2, false)
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = 1
	resp := h.do(req).(*kmsg.DescribeClusterResponse)
	if len(resp.Brokers) != 2 || resp.Brokers[1].NodeID != 2 || resp.Brokers[1].Rack == nil || *resp.Brokers[1].Rack != "r2" {
		t.Fatalf("brokers after unfencing 2: %+v", resp.Brokers)
	}

	req.EndpointType = 2 // controllers: not served by a broker
	resp = h.do(req).(*kmsg.DescribeClusterResponse)
	adminWantCode(t, "controller endpoints", resp.ErrorCode, kerr.UnsupportedEndpointType)
	if resp.ErrorMessage == nil || len(resp.Brokers) != 0 {
		t.Fatalf("unsupported endpoint type: %+v", resp)
	}
}
