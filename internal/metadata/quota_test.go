package metadata

import "testing"

func TestQuotaEntityFromParts(t *testing.T) {
	good := []struct {
		parts []QuotaEntityPart
		want  QuotaEntity
	}{
		{[]QuotaEntityPart{{Type: "user", Name: "alice"}}, QuotaEntity{User: Named("alice")}},
		{[]QuotaEntityPart{{Type: "client-id", Default: true}, {Type: "user", Name: "bob"}},
			QuotaEntity{User: Named("bob"), ClientID: DefaultName}},
		{[]QuotaEntityPart{{Type: "client-id", Name: ""}}, QuotaEntity{ClientID: Named("")}},
		{[]QuotaEntityPart{{Type: "ip", Default: true}}, QuotaEntity{IP: DefaultName}},
	}
	for _, g := range good {
		e, err := QuotaEntityFromParts(g.parts)
		requireNoError(t, err)
		require(t, e == g.want, "%v: got %+v, want %+v", g.parts, e, g.want)
		back, err := QuotaEntityFromParts(e.Parts())
		requireNoError(t, err)
		require(t, back == e, "Parts does not round-trip: %+v", back)
	}
	bad := [][]QuotaEntityPart{
		nil,
		{{Type: "group", Name: "g"}},
		{{Type: "user", Name: "a"}, {Type: "user", Name: "b"}},
		{{Type: "user", Name: ""}},
		{{Type: "ip", Name: "1.2.3.4"}, {Type: "user", Name: "a"}},
		{{Type: "user", Name: "a", Default: true}},
	}
	for _, parts := range bad {
		_, err := QuotaEntityFromParts(parts)
		require(t, errorsIs(err, ErrInvalidQuotaEntity), "%v: err %v", parts, err)
	}
}

func TestDeltaClientQuota(t *testing.T) {
	alice := []QuotaEntityPart{{Type: "user", Name: "alice"}}
	d := NewDelta(EmptyImage())
	requireNoError(t, d.Replay(&ClientQuota{Entity: alice, Key: QuotaProducerByteRate, Value: 1024}))
	requireNoError(t, d.Replay(&ClientQuota{Entity: alice, Key: QuotaConsumerByteRate, Value: 2048}))
	img1 := d.Apply(1)
	e := QuotaEntity{User: Named("alice")}
	require(t, img1.ClientQuotas(e)[QuotaProducerByteRate] == 1024 && img1.ClientQuotas(e)[QuotaConsumerByteRate] == 2048,
		"quotas %v", img1.ClientQuotas(e))

	// Images are immutable: removing a key makes a new map.
	requireNoError(t, d.Replay(&ClientQuota{Entity: alice, Key: QuotaProducerByteRate, Remove: true}))
	img2 := d.Apply(2)
	require(t, len(img1.ClientQuotas(e)) == 2, "img1 changed: %v", img1.ClientQuotas(e))
	require(t, len(img2.ClientQuotas(e)) == 1, "img2: %v", img2.ClientQuotas(e))

	// The last key removed removes the entity.
	requireNoError(t, d.Replay(&ClientQuota{Entity: alice, Key: QuotaConsumerByteRate, Remove: true}))
	img3 := d.Apply(3)
	require(t, !img3.HasClientQuotas(), "entity kept with no quotas: %v", img3.AllClientQuotas())

	for _, r := range []*ClientQuota{
		{Entity: alice, Key: "bogus", Value: 1},
		{Entity: alice, Key: QuotaConnectionCreationRate, Value: 1},
		{Entity: []QuotaEntityPart{{Type: "ip", Name: "1.2.3.4"}}, Key: QuotaProducerByteRate, Value: 1},
		{Entity: alice, Key: QuotaProducerByteRate, Value: -1},
		{Entity: alice, Key: QuotaProducerByteRate, Value: 0},
	} {
		require(t, d.Replay(r) != nil, "replayed %+v", r)
	}
}

func TestImageRecordsRebuildClientQuotas(t *testing.T) {
	d := NewDelta(EmptyImage())
	for _, r := range []*ClientQuota{
		{Entity: []QuotaEntityPart{{Type: "user", Default: true}}, Key: QuotaRequestPercentage, Value: 50},
		{Entity: []QuotaEntityPart{{Type: "user", Name: "a"}, {Type: "client-id", Name: "c"}}, Key: QuotaProducerByteRate, Value: 1.5},
		{Entity: []QuotaEntityPart{{Type: "ip", Name: "127.0.0.1"}}, Key: QuotaConnectionCreationRate, Value: 10},
	} {
		requireNoError(t, d.Replay(r))
	}
	img := d.Apply(5)
	rebuilt := NewDelta(EmptyImage())
	for _, r := range img.Records() {
		requireNoError(t, rebuilt.Replay(r))
	}
	got := rebuilt.Apply(5)
	requireSameImage(t, got, img)
	require(t, len(got.AllClientQuotas()) == 3, "quotas %v", got.AllClientQuotas())
}
