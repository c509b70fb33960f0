package controller

import (
	"errors"
	"math"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
)

func TestAlterClientQuotas(t *testing.T) {
	c := New(DefaultConfig(), nil)
	alice := []metadata.QuotaEntityPart{{Type: "user", Name: "alice"}}
	ip := []metadata.QuotaEntityPart{{Type: "ip", Default: true}}
	req := AlterClientQuotasRequest{Entries: []AlterClientQuotasEntry{
		{Entity: alice, Ops: []QuotaOp{{Key: "producer_byte_rate", Value: 1024}, {Key: "request_percentage", Value: 12.5}}},
		{Entity: alice, Ops: []QuotaOp{{Key: "bogus", Value: 1}}},
		{Entity: alice, Ops: []QuotaOp{{Key: "consumer_byte_rate", Value: -5}}},
		{Entity: alice, Ops: []QuotaOp{{Key: "consumer_byte_rate", Value: 1.5}}},
		{Entity: alice, Ops: []QuotaOp{{Key: "consumer_byte_rate", Value: math.NaN()}}},
		{Entity: alice, Ops: []QuotaOp{{Key: "controller_mutation_rate", Value: 10}}},
		{Entity: alice, Ops: []QuotaOp{{Key: "consumer_byte_rate", Value: 1}, {Key: "consumer_byte_rate", Remove: true}}},
		{Entity: ip, Ops: []QuotaOp{{Key: "producer_byte_rate", Value: 1}}},
		{Entity: []metadata.QuotaEntityPart{{Type: "group", Name: "g"}}, Ops: []QuotaOp{{Key: "producer_byte_rate", Value: 1}}},
		{Entity: ip, Ops: []QuotaOp{{Key: "connection_creation_rate", Value: 20}}},
		{Entity: alice, Ops: []QuotaOp{{Key: "controller_mutation_rate", Remove: true}}},
	}}
	records, resp := c.AlterClientQuotas(metadata.EmptyImage(), req)
	wantOK := map[int]bool{0: true, 9: true, 10: true}
	for i, res := range resp.Entries {
		if wantOK[i] != (res.Err == nil) {
			t.Errorf("entry %d: err %v", i, res.Err)
		}
		if res.Err != nil && !errors.Is(res.Err, ErrInvalidRequest) {
			t.Errorf("entry %d: %v is not ErrInvalidRequest", i, res.Err)
		}
	}
	if len(records) != 4 {
		t.Fatalf("%d records, want 4: %v", len(records), records)
	}
	d := metadata.NewDelta(metadata.EmptyImage())
	for _, r := range records {
		if err := d.Replay(r); err != nil {
			t.Fatal(err)
		}
	}
	img := d.Apply(1)
	if q := img.ClientQuotas(metadata.QuotaEntity{User: metadata.Named("alice")}); q["producer_byte_rate"] != 1024 || q["request_percentage"] != 12.5 {
		t.Fatalf("quotas %v", q)
	}

	records, resp = c.AlterClientQuotas(img, AlterClientQuotasRequest{ValidateOnly: true,
		Entries: []AlterClientQuotasEntry{{Entity: alice, Ops: []QuotaOp{{Key: "producer_byte_rate", Remove: true}}}}})
	if len(records) != 0 || resp.Entries[0].Err != nil {
		t.Fatalf("validate only: %v %v", records, resp.Entries[0].Err)
	}
}
