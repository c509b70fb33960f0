package quota

import (
	"math"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func TestRateFirstBurstSpreadOverMinimumWindow(t *testing.T) {
	r := NewRate(WindowConfig{Samples: 11, WindowMs: 1000})
	r.Record(5000, 0)
	// Ten whole windows at least: 5000 bytes over 10 s.
	if w := r.WindowMs(0); w != 10_000 {
		t.Fatalf("window %d, want 10000", w)
	}
	if got := r.PerSecond(0); !near(got, 500) {
		t.Fatalf("rate %v, want 500", got)
	}
	if th := r.ThrottleMs(500, 0); th != 0 {
		t.Fatalf("throttled %d ms at exactly the bound", th)
	}
	// (500-250)/250 × 10 s.
	if th := r.ThrottleMs(250, 0); th != 10_000 {
		t.Fatalf("throttle %d, want 10000", th)
	}
}

func TestRateSteadyStateAndExpiry(t *testing.T) {
	r := NewRate(WindowConfig{Samples: 3, WindowMs: 1000})
	// 100 units every 500 ms for 5 s: 200 a second.
	for now := int64(0); now < 5000; now += 500 {
		r.Record(100, now)
	}
	now := int64(4999)
	// Windows start at 2000, 3000, 4000 (older ones reused); span 2999 ms.
	if w := r.WindowMs(now); w != 2999 {
		t.Fatalf("window %d, want 2999", w)
	}
	if got := r.PerSecond(now); !near(got, 600*1000/2999.0) {
		t.Fatalf("rate %v", got)
	}
	// Long after, every window has expired: the rate is 0.
	if got := r.PerSecond(100_000); got != 0 {
		t.Fatalf("rate %v after expiry, want 0", got)
	}
}

func TestRateThrottleBringsRateToBound(t *testing.T) {
	cfg := WindowConfig{Samples: 11, WindowMs: 1000}
	r := NewRate(cfg)
	// A producer at 4 KiB every 100 ms against a 10 KiB/s quota,
	// pausing for each throttle as a KIP-219 client does.
	now, bound := int64(0), 10240.0
	var sent float64
	for now < 60_000 {
		r.Record(4096, now)
		sent += 4096
		now += 100 + r.ThrottleMs(bound, now)
	}
	got := sent * 1000 / float64(now)
	if got > bound*1.25 || got < bound*0.75 {
		t.Fatalf("throttled throughput %.0f B/s over %d ms, quota %.0f", got, now, bound)
	}
}

func TestRateThrottleCapped(t *testing.T) {
	r := NewRate(WindowConfig{Samples: 2, WindowMs: 1000})
	r.Record(1e12, 0)
	if th := r.ThrottleMs(1, 0); th != 2000 {
		t.Fatalf("throttle %d, want the cap 2000", th)
	}
}

func TestMaxValueInWindow(t *testing.T) {
	if got := MaxValueInWindow(WindowConfig{Samples: 11, WindowMs: 1000}, 1024); got != 10240 {
		t.Fatalf("got %v", got)
	}
}

func quotas(m map[metadata.QuotaEntity]map[string]float64) Lookup {
	return func(e metadata.QuotaEntity) map[string]float64 { return m[e] }
}

func TestResolvePrecedence(t *testing.T) {
	u, c, d := metadata.Named("alice"), metadata.Named("app"), metadata.DefaultName
	key := metadata.QuotaProducerByteRate
	levels := []struct {
		entity metadata.QuotaEntity
		tags   Tags
	}{
		{metadata.QuotaEntity{User: u, ClientID: c}, Tags{"alice", "app"}},
		{metadata.QuotaEntity{User: u, ClientID: d}, Tags{"alice", "app"}},
		{metadata.QuotaEntity{User: u}, Tags{User: "alice"}},
		{metadata.QuotaEntity{User: d, ClientID: c}, Tags{"alice", "app"}},
		{metadata.QuotaEntity{User: d, ClientID: d}, Tags{"alice", "app"}},
		{metadata.QuotaEntity{User: d}, Tags{User: "alice"}},
		{metadata.QuotaEntity{ClientID: c}, Tags{ClientID: "app"}},
		{metadata.QuotaEntity{ClientID: d}, Tags{ClientID: "app"}},
	}
	// With levels i.. set, level i wins.
	for i := range levels {
		m := map[metadata.QuotaEntity]map[string]float64{}
		for j := i; j < len(levels); j++ {
			m[levels[j].entity] = map[string]float64{key: float64(j + 1)}
		}
		// Another key on a more specific entity does not count.
		if i > 0 {
			m[levels[0].entity] = map[string]float64{metadata.QuotaConsumerByteRate: 99}
		}
		bound, tags, ok := Resolve(quotas(m), key, "alice", "app")
		if !ok || bound != float64(i+1) || tags != levels[i].tags {
			t.Fatalf("level %d: bound %v tags %+v ok %v", i, bound, tags, ok)
		}
	}
	if _, _, ok := Resolve(quotas(nil), key, "alice", "app"); ok {
		t.Fatal("a quota resolved with none set")
	}
}

func TestResolveIP(t *testing.T) {
	m := map[metadata.QuotaEntity]map[string]float64{
		{IP: metadata.DefaultName}:       {metadata.QuotaConnectionCreationRate: 5},
		{IP: metadata.Named("10.0.0.1")}: {metadata.QuotaConnectionCreationRate: 50},
	}
	if b, ok := ResolveIP(quotas(m), "10.0.0.1"); !ok || b != 50 {
		t.Fatalf("named ip: %v %v", b, ok)
	}
	if b, ok := ResolveIP(quotas(m), "10.0.0.2"); !ok || b != 5 {
		t.Fatalf("default ip: %v %v", b, ok)
	}
}
