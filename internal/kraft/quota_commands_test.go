package kraft

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/metadata"
)

// TestKRaftAlterClientQuotasForwards checks the command and its response
// survive the gob round trip a follower's forward takes, errors included.
func TestKRaftAlterClientQuotasForwards(t *testing.T) {
	entity := []metadata.QuotaEntityPart{{Type: "user", Name: "alice"}, {Type: "client-id", Default: true}}
	cmd := AlterClientQuotas{Request: controller.AlterClientQuotasRequest{Entries: []controller.AlterClientQuotasEntry{
		{Entity: entity, Ops: []controller.QuotaOp{{Key: "producer_byte_rate", Value: 1024}}}}}}
	data, err := encodeForward(cmd)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeForward(data)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := back.(AlterClientQuotas)
	if !ok || got.Request.Entries[0].Entity[1] != entity[1] || got.Request.Entries[0].Ops[0].Value != 1024 {
		t.Fatalf("decoded %#v", back)
	}
	resp := controller.AlterClientQuotasResponse{Entries: []controller.AlterClientQuotasResult{
		{Entity: entity, Err: fmt.Errorf("%w: unknown quota key", controller.ErrInvalidRequest)}}}
	data, err = encodeReply(resp, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, index, err := decodeReply(data)
	if err != nil || index != 7 {
		t.Fatalf("reply index %d err %v", index, err)
	}
	if e := r.(controller.AlterClientQuotasResponse).Entries[0].Err; !errors.Is(e, controller.ErrInvalidRequest) {
		t.Fatalf("forwarded error %v does not match ErrInvalidRequest", e)
	}
}
