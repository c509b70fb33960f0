package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestInitProducerIDAtEveryVersion(t *testing.T) {
	h := newHarness(t, Config{})
	seen := map[int64]bool{}
	for v := int16(0); v <= 5; v++ {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = v
		req.ProducerID, req.ProducerEpoch = 77, 3 // ignored without a transactional id
		resp := h.do(req).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != 0 || resp.ProducerID < 1000 || resp.ProducerEpoch != 0 || seen[resp.ProducerID] {
			t.Fatalf("v%d: %+v", v, resp)
		}
		seen[resp.ProducerID] = true
	}
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	id := "txn-1"
	req.TransactionalID = &id
	resp := h.do(req).(*kmsg.InitProducerIDResponse)
	// Without a transaction coordinator (this harness has none) the answer
	// is retriable; txn_test.go covers the coordinator's.
	if resp.ErrorCode != kerr.CoordinatorNotAvailable.Code || resp.ProducerID != -1 || resp.ProducerEpoch != -1 {
		t.Fatalf("transactional: %+v", resp)
	}
}
