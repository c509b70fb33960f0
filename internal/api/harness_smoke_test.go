package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAPIVersionsListsEveryHandler(t *testing.T) {
	h := newHarness(t, Config{})
	for _, v := range []int16{0, 3, 4} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
		resp := h.do(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 || len(resp.ApiKeys) != len(handlers) {
			t.Fatalf("v%d: error %d, %d keys, want %d", v, resp.ErrorCode, len(resp.ApiKeys), len(handlers))
		}
	}
}
