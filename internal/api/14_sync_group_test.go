package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// From v5 the protocol type and name are mandatory, as Kafka checks before
// the coordinator sees the request.
func TestSyncGroupV5NeedsProtocol(t *testing.T) {
	f := &fakeGroups{}
	h := newFakeGroupHarness(t, f)
	req := groupSyncRequest(5, "g", 1, "m", nil)
	req.Protocol = nil
	groupWantCode(t, "v5 without protocol name", groupMust[*kmsg.SyncGroupResponse](t, h, req).ErrorCode, kerr.InconsistentGroupProtocol)
	if len(f.syncs) != 0 {
		t.Fatal("the coordinator saw it")
	}
	groupWantCode(t, "v4 without protocol", groupMust[*kmsg.SyncGroupResponse](t, h, groupSyncRequest(4, "g", 1, "m", nil)).ErrorCode, nil)
	groupWantCode(t, "v5 with protocol", groupMust[*kmsg.SyncGroupResponse](t, h, groupSyncRequest(5, "g", 1, "m", nil)).ErrorCode, nil)
	if got := f.syncs[1]; got.ProtocolType != "consumer" || got.ProtocolName != "range" || got.GroupID != "g" || got.GenerationID != 1 {
		t.Fatalf("v5 sync as %+v", got)
	}
}
