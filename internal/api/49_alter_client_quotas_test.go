package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/metadata"
)

func quotaEntity(kv ...string) []kmsg.AlterClientQuotasRequestEntryEntity {
	var out []kmsg.AlterClientQuotasRequestEntryEntity
	for i := 0; i < len(kv); i += 2 {
		e := kmsg.AlterClientQuotasRequestEntryEntity{Type: kv[i]}
		if kv[i+1] != "<default>" {
			e.Name = adminPtr(kv[i+1])
		}
		out = append(out, e)
	}
	return out
}

func quotaOp(key string, value float64) kmsg.AlterClientQuotasRequestEntryOp {
	return kmsg.AlterClientQuotasRequestEntryOp{Key: key, Value: value}
}

func alterQuotas(t *testing.T, h *harness, v int16, entries ...kmsg.AlterClientQuotasRequestEntry) []kmsg.AlterClientQuotasResponseEntry {
	t.Helper()
	req := kmsg.NewPtrAlterClientQuotasRequest()
	req.Version, req.Entries = v, entries
	resp := h.do(req).(*kmsg.AlterClientQuotasResponse)
	if len(resp.Entries) != len(entries) {
		t.Fatalf("%d results for %d entries", len(resp.Entries), len(entries))
	}
	return resp.Entries
}

func TestAlterClientQuotasSetDescribeRemove(t *testing.T) {
	h := newAdminHarness(t, Config{})
	for v := int16(0); v <= 1; v++ {
		res := alterQuotas(t, h, v,
			kmsg.AlterClientQuotasRequestEntry{Entity: quotaEntity("user", "alice"),
				Ops: []kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", 1048576), quotaOp("request_percentage", 25.5)}},
			kmsg.AlterClientQuotasRequestEntry{Entity: quotaEntity("user", "<default>", "client-id", "<default>"),
				Ops: []kmsg.AlterClientQuotasRequestEntryOp{quotaOp("consumer_byte_rate", 2048)}},
			kmsg.AlterClientQuotasRequestEntry{Entity: quotaEntity("ip", "10.1.2.3"),
				Ops: []kmsg.AlterClientQuotasRequestEntryOp{quotaOp("connection_creation_rate", 5)}},
		)
		for i, r := range res {
			adminWantCode(t, "entry", r.ErrorCode, nil)
			if len(r.Entity) == 0 {
				t.Fatalf("entry %d: no entity echoed", i)
			}
		}
		q := h.cp.Image().ClientQuotas(metadata.QuotaEntity{User: metadata.Named("alice")})
		if q["producer_byte_rate"] != 1048576 || q["request_percentage"] != 25.5 {
			t.Fatalf("v%d: alice's quotas %v", v, q)
		}

		describe := func(strict bool, comps ...kmsg.DescribeClientQuotasRequestComponent) *kmsg.DescribeClientQuotasResponse {
			req := kmsg.NewPtrDescribeClientQuotasRequest()
			req.Version, req.Strict, req.Components = v, strict, comps
			return h.do(req).(*kmsg.DescribeClientQuotasResponse)
		}
		all := describe(false)
		if all.ErrorCode != 0 || len(all.Entries) != 3 {
			t.Fatalf("v%d: describe all: code %d, %d entries", v, all.ErrorCode, len(all.Entries))
		}
		exact := describe(false, kmsg.DescribeClientQuotasRequestComponent{EntityType: "user", MatchType: kmsg.QuotasMatchTypeExact, Match: adminPtr("alice")})
		if len(exact.Entries) != 1 || len(exact.Entries[0].Values) != 2 || *exact.Entries[0].Entity[0].Name != "alice" {
			t.Fatalf("v%d: exact alice: %+v", v, exact.Entries)
		}
		// The default user matches DEFAULT and ANY, and only non-strictly
		// when the entity also names a client id.
		def := describe(false, kmsg.DescribeClientQuotasRequestComponent{EntityType: "user", MatchType: kmsg.QuotasMatchTypeDefault})
		if len(def.Entries) != 1 || def.Entries[0].Entity[0].Name != nil || def.Entries[0].Values[0].Value != 2048 {
			t.Fatalf("v%d: default user: %+v", v, def.Entries)
		}
		if strict := describe(true, kmsg.DescribeClientQuotasRequestComponent{EntityType: "user", MatchType: kmsg.QuotasMatchTypeAny}); len(strict.Entries) != 1 {
			t.Fatalf("v%d: strict any user: %+v", v, strict.Entries)
		}
		bad := describe(false, kmsg.DescribeClientQuotasRequestComponent{EntityType: "ip", MatchType: kmsg.QuotasMatchTypeAny},
			kmsg.DescribeClientQuotasRequestComponent{EntityType: "user", MatchType: kmsg.QuotasMatchTypeAny})
		adminWantCode(t, "ip with user filter", bad.ErrorCode, kerr.InvalidRequest)

		remove := kmsg.AlterClientQuotasRequestEntryOp{Key: "producer_byte_rate", Remove: true}
		res = alterQuotas(t, h, v, kmsg.AlterClientQuotasRequestEntry{Entity: quotaEntity("user", "alice"),
			Ops: []kmsg.AlterClientQuotasRequestEntryOp{remove, {Key: "request_percentage", Remove: true}}})
		adminWantCode(t, "remove", res[0].ErrorCode, nil)
		if q := h.cp.Image().ClientQuotas(metadata.QuotaEntity{User: metadata.Named("alice")}); q != nil {
			t.Fatalf("v%d: alice's quotas after removal: %v", v, q)
		}
	}
}

func TestAlterClientQuotasValidation(t *testing.T) {
	h := newAdminHarness(t, Config{})
	before := h.cp.Image().Offset()
	cases := []struct {
		name  string
		entry kmsg.AlterClientQuotasRequestEntry
	}{
		{"unknown key", kmsg.AlterClientQuotasRequestEntry{Entity: quotaEntity("user", "a"),
			Ops: []kmsg.AlterClientQuotasRequestEntryOp{quotaOp("bogus_rate", 1)}}},
		{"negative value", kmsg.AlterClientQuotasRequestEntry{Entity: quotaEntity("client-id", "c"),
			Ops: []kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", -1)}}},
		{"fractional byte rate", kmsg.AlterClientQuotasRequestEntry{Entity: quotaEntity("client-id", "c"),
			Ops: []kmsg.AlterClientQuotasRequestEntryOp{quotaOp("consumer_byte_rate", 0.5)}}},
		{"unknown entity type", kmsg.AlterClientQuotasRequestEntry{Entity: quotaEntity("group", "g"),
			Ops: []kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", 1)}}},
		{"ip with user", kmsg.AlterClientQuotasRequestEntry{Entity: quotaEntity("ip", "1.2.3.4", "user", "a"),
			Ops: []kmsg.AlterClientQuotasRequestEntryOp{quotaOp("connection_creation_rate", 1)}}},
		{"ip not an address", kmsg.AlterClientQuotasRequestEntry{Entity: quotaEntity("ip", "not-an-ip"),
			Ops: []kmsg.AlterClientQuotasRequestEntryOp{quotaOp("connection_creation_rate", 1)}}},
		{"byte rate on an ip", kmsg.AlterClientQuotasRequestEntry{Entity: quotaEntity("ip", "1.2.3.4"),
			Ops: []kmsg.AlterClientQuotasRequestEntryOp{quotaOp("producer_byte_rate", 1)}}},
		{"controller mutation rate", kmsg.AlterClientQuotasRequestEntry{Entity: quotaEntity("user", "a"),
			Ops: []kmsg.AlterClientQuotasRequestEntryOp{quotaOp("controller_mutation_rate", 10)}}},
	}
	for _, c := range cases {
		res := alterQuotas(t, h, 1, c.entry)
		adminWantCode(t, c.name, res[0].ErrorCode, kerr.InvalidRequest)
		if res[0].ErrorMessage == nil || *res[0].ErrorMessage == "" {
			t.Fatalf("%s: no error message", c.name)
		}
	}
	if h.cp.Image().HasClientQuotas() {
		t.Fatalf("a refused entry was applied: %v (offset %d -> %d)", h.cp.Image().AllClientQuotas(), before, h.cp.Image().Offset())
	}
}
