package api

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
)

func findCoordinatorRequest(version int16, keyType int8, keys ...string) *kmsg.FindCoordinatorRequest {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version, req.CoordinatorType = version, keyType
	if version < 4 {
		req.CoordinatorKey = keys[0]
	} else {
		req.CoordinatorKeys = keys
	}
	return req
}

func TestFindCoordinatorSingleAndBatched(t *testing.T) {
	h := newGroupHarness(t, groupTestConfig())
	groups := []string{"g-a", "g-b", "g-c", "g-d"}
	for _, g := range groups {
		groupWaitCoordinator(t, h, g)
	}
	for _, v := range []int16{0, 1, 2, 3} {
		resp := groupMust[*kmsg.FindCoordinatorResponse](t, h, findCoordinatorRequest(v, 0, "g-a"))
		groupWantCode(t, "single key", resp.ErrorCode, nil)
		if resp.NodeID != 1 || resp.Host != "127.0.0.1" || resp.Port != 9092 {
			t.Fatalf("v%d coordinator %d %s:%d", v, resp.NodeID, resp.Host, resp.Port)
		}
	}
	for _, v := range []int16{4, 5, 6} {
		resp := groupMust[*kmsg.FindCoordinatorResponse](t, h, findCoordinatorRequest(v, 0, groups...))
		if len(resp.Coordinators) != len(groups) {
			t.Fatalf("v%d: %d coordinators for %d keys", v, len(resp.Coordinators), len(groups))
		}
		for i, c := range resp.Coordinators {
			groupWantCode(t, c.Key, c.ErrorCode, nil)
			if c.Key != groups[i] || c.NodeID != 1 || c.Host != "127.0.0.1" || c.Port != 9092 {
				t.Fatalf("v%d coordinator %+v", v, c)
			}
		}
	}

	// The offsets topic now exists and is internal (franz-go waits for it).
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Version = 12
	mreq.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(coord.OffsetsTopic)}}
	mresp := groupMust[*kmsg.MetadataResponse](t, h, mreq)
	if len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != 0 || !mresp.Topics[0].IsInternal || len(mresp.Topics[0].Partitions) != 3 {
		t.Fatalf("metadata of %s: %+v", coord.OffsetsTopic, mresp.Topics)
	}
}

func TestFindCoordinatorWithoutCoordinator(t *testing.T) {
	h := newFakeGroupHarness(t, nil)
	resp := groupMust[*kmsg.FindCoordinatorResponse](t, h, findCoordinatorRequest(0, 0, "g"))
	groupWantCode(t, "v0", resp.ErrorCode, kerr.CoordinatorNotAvailable)
	if resp.NodeID != -1 || resp.Host != "" || resp.Port != -1 {
		t.Fatalf("v0 error response names node %d %s:%d", resp.NodeID, resp.Host, resp.Port)
	}
	resp = groupMust[*kmsg.FindCoordinatorResponse](t, h, findCoordinatorRequest(4, 0, "g", "h"))
	if len(resp.Coordinators) != 2 {
		t.Fatalf("v4: %d coordinators", len(resp.Coordinators))
	}
	for _, c := range resp.Coordinators {
		groupWantCode(t, "v4 "+c.Key, c.ErrorCode, kerr.CoordinatorNotAvailable)
	}
}

// A broker without a transaction coordinator answers transaction keys
// with the retriable COORDINATOR_NOT_AVAILABLE, and group keys as before.
func TestFindCoordinatorTransactionKeysWithoutTxnCoordinator(t *testing.T) {
	h := newFakeGroupHarness(t, &fakeGroups{findNode: 1})
	for _, v := range []int16{1, 3} {
		resp := groupMust[*kmsg.FindCoordinatorResponse](t, h, findCoordinatorRequest(v, 1, "txn"))
		groupWantCode(t, "transaction key", resp.ErrorCode, kerr.CoordinatorNotAvailable)
		if resp.ErrorMessage == nil || !strings.Contains(*resp.ErrorMessage, "transaction") || resp.NodeID != -1 {
			t.Fatalf("v%d: message %v, node %d", v, resp.ErrorMessage, resp.NodeID)
		}
	}
	resp := groupMust[*kmsg.FindCoordinatorResponse](t, h, findCoordinatorRequest(4, 1, "t1", "t2"))
	for _, c := range resp.Coordinators {
		groupWantCode(t, "batched transaction key "+c.Key, c.ErrorCode, kerr.CoordinatorNotAvailable)
	}
	// Nor a share coordinator (key type 2); an unknown key type is invalid.
	resp = groupMust[*kmsg.FindCoordinatorResponse](t, h, findCoordinatorRequest(6, 2, "s:AAAAAAAAAAAAAAAAAAAAAA:0"))
	groupWantCode(t, "share key", resp.Coordinators[0].ErrorCode, kerr.CoordinatorNotAvailable)
	resp = groupMust[*kmsg.FindCoordinatorResponse](t, h, findCoordinatorRequest(6, 3, "s"))
	groupWantCode(t, "key type 3", resp.Coordinators[0].ErrorCode, kerr.InvalidRequest)
	// Group keys of the same broker still work.
	resp = groupMust[*kmsg.FindCoordinatorResponse](t, h, findCoordinatorRequest(4, 0, "g"))
	groupWantCode(t, "group key", resp.Coordinators[0].ErrorCode, nil)
}

func TestFindCoordinatorOnAnotherBroker(t *testing.T) {
	f := &fakeGroups{findNode: 2}
	h := newFakeGroupHarness(t, f)
	resp := groupMust[*kmsg.FindCoordinatorResponse](t, h, findCoordinatorRequest(0, 0, "g"))
	groupWantCode(t, "unregistered coordinator", resp.ErrorCode, kerr.CoordinatorNotAvailable)

	registerAndUnfence(t, h.cp, 2)
	resp = groupMust[*kmsg.FindCoordinatorResponse](t, h, findCoordinatorRequest(2, 0, "g"))
	groupWantCode(t, "live coordinator", resp.ErrorCode, nil)
	if resp.NodeID != 2 || resp.Host != "127.0.0.1" || resp.Port != 9092 {
		t.Fatalf("coordinator %d %s:%d", resp.NodeID, resp.Host, resp.Port)
	}

	f.err = coord.ErrCoordinatorLoadInProgress
	resp = groupMust[*kmsg.FindCoordinatorResponse](t, h, findCoordinatorRequest(2, 0, "g"))
	groupWantCode(t, "loading", resp.ErrorCode, kerr.CoordinatorLoadInProgress)
}
