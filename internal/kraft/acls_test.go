package kraft

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/controller"
)

// TestKRaftACLCommandsForward checks that the ACL commands and their
// responses survive the gob trip a follower's forwarding takes, errors
// included: a cluster of one never forwards, so nothing else would notice
// a missing registration.
func TestKRaftACLCommandsForward(t *testing.T) {
	b := auth.Binding{ResourceType: auth.ResourceTopic, ResourceName: "t", PatternType: auth.PatternLiteral,
		Principal: "User:a", Host: "*", Operation: auth.OpRead, Permission: auth.PermissionAllow}
	for _, cmd := range []Command{
		CreateACLs{Request: controller.CreateACLsRequest{Bindings: []auth.Binding{b}}},
		DeleteACLs{Request: controller.DeleteACLsRequest{Filters: []auth.Filter{{ResourceType: auth.ResourceAny}}}},
	} {
		data, err := encodeForward(cmd)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeForward(data)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(cmd) {
			t.Fatalf("forwarded %v as %v, %v", cmd, got, err)
		}
	}
	invalid := fmt.Errorf("%w: bad", controller.ErrInvalidRequest)
	for _, resp := range []any{
		controller.CreateACLsResponse{Results: []error{nil, invalid}},
		controller.DeleteACLsResponse{Results: []controller.DeleteACLsResult{{Deleted: []auth.Binding{b}}, {Err: invalid}}},
	} {
		data, err := encodeReply(resp, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := decodeReply(data)
		if err != nil {
			t.Fatal(err)
		}
		switch r := got.(type) {
		case controller.CreateACLsResponse:
			if r.Results[0] != nil || !errors.Is(r.Results[1], controller.ErrInvalidRequest) {
				t.Errorf("create reply %+v", r)
			}
		case controller.DeleteACLsResponse:
			if len(r.Results[0].Deleted) != 1 || r.Results[0].Deleted[0] != b || !errors.Is(r.Results[1].Err, controller.ErrInvalidRequest) {
				t.Errorf("delete reply %+v", r)
			}
		default:
			t.Errorf("reply of type %T", got)
		}
	}
}
