package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBoundsCoverEveryValue(t *testing.T) {
	values := []int64{0, 1, subBuckets - 1, subBuckets, subBuckets + 1, 2*subBuckets - 1, 2 * subBuckets,
		1000, 123456, 1 << 20, 1<<30 + 12345, maxTrackable - 1, maxTrackable}
	for _, v := range values {
		b := bucketOf(v)
		if lo, hi := lowestOf(b), highestOf(b); v < lo || v > hi {
			t.Errorf("value %d in bucket %d [%d, %d]", v, b, lo, hi)
		}
		if b > 0 && highestOf(b-1)+1 != lowestOf(b) {
			t.Errorf("gap before bucket %d", b)
		}
	}
	var h Histogram
	if top := bucketOf(maxTrackable); top != len(h.counts)-1 {
		t.Errorf("top value in bucket %d of %d", top, len(h.counts))
	}
}

// TestQuantilesWithinPrecision checks quantiles of known distributions
// against the exact order statistics: never below, and above by at most
// 0.1% (three significant digits).
func TestQuantilesWithinPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	distributions := map[string]func() int64{
		"uniform 0-10s":     func() int64 { return r.Int64N(10_000_000) },
		"exponential 2ms":   func() int64 { return int64(r.ExpFloat64() * 2000) },
		"constant 1.5ms":    func() int64 { return 1500 },
		"normal 20±3ms":     func() int64 { return max(int64(20000+r.NormFloat64()*3000), 0) },
		"bimodal 50µs, 25s": func() int64 { return map[bool]int64{true: 25_000_000, false: 50}[r.IntN(100) == 0] + r.Int64N(100) },
		"log-uniform µs-1h": func() int64 { return int64(math.Exp(r.Float64() * math.Log(3.6e9))) },
	}
	for name, draw := range distributions {
		var h Histogram
		exact := make([]int64, 200000)
		for i := range exact {
			exact[i] = draw()
			h.Record(time.Duration(exact[i]) * time.Microsecond)
		}
		slices.Sort(exact)
		for _, q := range []float64{0.001, 0.5, 0.9, 0.95, 0.99, 0.999, 0.9999, 1} {
			want := exact[max(int(math.Ceil(q*float64(len(exact))))-1, 0)]
			got := h.Quantile(q).Microseconds()
			if got < want || float64(got-want) > float64(want)*0.001 {
				t.Errorf("%s: q%g = %d µs, exact %d µs: off by more than 0.1%%", name, q, got, want)
			}
		}
		if h.Max() != time.Duration(exact[len(exact)-1])*time.Microsecond || h.Count() != uint64(len(exact)) {
			t.Errorf("%s: max %v count %d", name, h.Max(), h.Count())
		}
	}
}

func TestBeyondTrackableRange(t *testing.T) {
	var h Histogram
	h.Record(time.Millisecond)
	h.Record(30 * time.Hour)
	if h.Max() != 30*time.Hour {
		t.Errorf("max %v, want 30h exactly", h.Max())
	}
	if got := h.Quantile(1); got != time.Duration(maxTrackable)*time.Microsecond {
		t.Errorf("p100 %v, want the top of the range", got)
	}
	if got := h.Quantile(0.5); got != time.Millisecond {
		t.Errorf("p50 %v, want 1ms", got)
	}
}

func TestMergeAndEmpty(t *testing.T) {
	var a, b Histogram
	if a.Quantile(0.99) != 0 {
		t.Fatal("empty histogram has a p99")
	}
	for i := 1; i <= 100; i++ {
		a.Record(time.Duration(i) * time.Millisecond)
		b.Record(time.Duration(i+100) * time.Millisecond)
	}
	a.Merge(&b)
	if a.Count() != 200 || a.Max() != 200*time.Millisecond {
		t.Fatalf("merged count %d max %v", a.Count(), a.Max())
	}
	if p50 := a.Quantile(0.5); p50 < 99*time.Millisecond || p50 > 101*time.Millisecond {
		t.Errorf("merged p50 %v, want about 100ms", p50)
	}
	a.Record(-time.Second) // clock skew must not panic
}

func TestScheduleSpacesRecordsEvenly(t *testing.T) {
	start := time.Unix(1000, 0)
	s := Schedule{Start: start, Rate: 4000}
	if got := s.Due(4000).Sub(start); got != time.Second {
		t.Errorf("record 4000 due after %v, want 1s", got)
	}
	if got := s.Due(1).Sub(s.Due(0)); got != 250*time.Microsecond {
		t.Errorf("spacing %v, want 250µs", got)
	}
	if !(Schedule{Start: start}).Due(1e9).Equal(start) {
		t.Error("with no rate every record is due at the start")
	}
}
