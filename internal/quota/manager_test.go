package quota

import (
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
)

func imageWith(t *testing.T, records ...*metadata.ClientQuota) *metadata.Image {
	t.Helper()
	d := metadata.NewDelta(metadata.EmptyImage())
	for _, r := range records {
		if err := d.Replay(r); err != nil {
			t.Fatal(err)
		}
	}
	return d.Apply(1)
}

func TestManagerUserQuotaSharedByClientIDs(t *testing.T) {
	img := imageWith(t, &metadata.ClientQuota{Entity: []metadata.QuotaEntityPart{{Type: "user", Name: "alice"}},
		Key: metadata.QuotaProducerByteRate, Value: 1000})
	m := NewManager(WindowConfig{Samples: 11, WindowMs: 1000})
	// 10 s at 1000 B/s is 10000 B: two clients of alice share it.
	if th := m.Record(img, Produce, "alice", "a", 6000, 0); th != 0 {
		t.Fatalf("throttled %d ms within the quota", th)
	}
	if th := m.Record(img, Produce, "alice", "b", 6000, 0); th != 2000 {
		t.Fatalf("second client throttle %d, want 2000 (12000 B over 10 s at 1000 B/s)", th)
	}
	if n := m.NumSensors(); n != 1 {
		t.Fatalf("%d sensors, want one shared by the user", n)
	}
	// bob has no quota: not limited, no sensor.
	if th := m.Record(img, Produce, "bob", "a", 1e9, 0); th != 0 || m.NumSensors() != 1 {
		t.Fatalf("bob throttled %d, sensors %d", th, m.NumSensors())
	}
}

func TestManagerDefaultQuotaPerClient(t *testing.T) {
	img := imageWith(t, &metadata.ClientQuota{Entity: []metadata.QuotaEntityPart{{Type: "client-id", Default: true}},
		Key: metadata.QuotaConsumerByteRate, Value: 1000})
	m := NewManager(WindowConfig{})
	m.Record(img, Fetch, "ANONYMOUS", "a", 9000, 0)
	if th := m.Record(img, Fetch, "ANONYMOUS", "b", 9000, 0); th != 0 {
		t.Fatalf("client b throttled %d ms by client a's bytes", th)
	}
	if n := m.NumSensors(); n != 2 {
		t.Fatalf("%d sensors, want one per client id", n)
	}
}

func TestManagerDropsIdleSensors(t *testing.T) {
	img := imageWith(t, &metadata.ClientQuota{Entity: []metadata.QuotaEntityPart{{Type: "client-id", Default: true}},
		Key: metadata.QuotaRequestPercentage, Value: 10})
	m := NewManager(WindowConfig{})
	m.Record(img, Request, "u", "old", 1, 0)
	m.Record(img, Request, "u", "new", 1, inactiveSensorMs+sweepIntervalMs)
	if n := m.NumSensors(); n != 1 {
		t.Fatalf("%d sensors after an hour idle, want 1", n)
	}
}
