package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDeleteTopicsByName(t *testing.T) {
	h := newAdminHarness(t, Config{})
	adminCreate(t, h, "a", 1)
	adminCreate(t, h, "b", 1)
	for _, v := range []int16{0, 5} {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.Version = v
		name := map[int16]string{0: "a", 5: "b"}[v]
		req.TopicNames = []string{name, "missing"}
		resp := h.do(req).(*kmsg.DeleteTopicsResponse)
		if len(resp.Topics) != 2 || *resp.Topics[0].Topic != name || *resp.Topics[1].Topic != "missing" {
			t.Fatalf("v%d: %+v", v, resp.Topics)
		}
		adminWantCode(t, name, resp.Topics[0].ErrorCode, nil)
		adminWantCode(t, "missing", resp.Topics[1].ErrorCode, kerr.UnknownTopicOrPartition)
		if hasMessage := resp.Topics[1].ErrorMessage != nil; hasMessage != (v >= 5) {
			t.Fatalf("v%d error message %v", v, resp.Topics[1].ErrorMessage)
		}
		if _, ok := h.cp.Image().Topic(name); ok {
			t.Fatalf("v%d: %s still exists", v, name)
		}
	}
}

func TestDeleteTopicsV6ByNameOrID(t *testing.T) {
	h := newAdminHarness(t, Config{})
	byID := adminCreate(t, h, "byid", 1)
	adminCreate(t, h, "byname", 1)
	both := adminCreate(t, h, "both", 1)
	adminCreate(t, h, "dup", 1)

	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 6
	req.Topics = []kmsg.DeleteTopicsRequestTopic{
		{TopicID: byID.TopicID},
		{Topic: adminPtr("byname")},
		{Topic: adminPtr("both"), TopicID: both.TopicID},
		{},
		{TopicID: [16]byte{7}},
		{Topic: adminPtr("dup")},
		{Topic: adminPtr("dup")},
	}
	resp := h.do(req).(*kmsg.DeleteTopicsResponse)
	if len(resp.Topics) != len(req.Topics) {
		t.Fatalf("%d results: %+v", len(resp.Topics), resp.Topics)
	}
	want := []*kerr.Error{nil, nil, kerr.InvalidRequest, kerr.InvalidRequest, kerr.UnknownTopicID, kerr.InvalidRequest, kerr.InvalidRequest}
	for i, w := range want {
		adminWantCode(t, "topic "+string(rune('0'+i)), resp.Topics[i].ErrorCode, w)
	}
	if r := resp.Topics[0]; r.Topic == nil || *r.Topic != "byid" || r.TopicID != byID.TopicID {
		t.Fatalf("by id: %+v", r)
	}
	if r := resp.Topics[1]; r.TopicID == [16]byte{} {
		t.Fatalf("by name: no id in %+v", r)
	}
	img := h.cp.Image()
	for name, exists := range map[string]bool{"byid": false, "byname": false, "both": true, "dup": true} {
		if _, ok := img.Topic(name); ok != exists {
			t.Fatalf("%s exists %v, want %v", name, ok, exists)
		}
	}
}
