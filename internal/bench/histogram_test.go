package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBoundsCoverEveryValue(t *testing.T) {
	values := []int64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, 1<<62 + 1}
	for _, v := range values {
		b := bucketOf(v)
		if lo, hi := lowestOf(b), highestOf(b); v < lo || v > hi {
			t.Errorf("value %d in bucket %d [%d, %d]", v, b, lo, hi)
		}
		if b > 0 && highestOf(b-1)+1 != lowestOf(b) {
			t.Errorf("gap before bucket %d", b)
		}
	}
}

func TestQuantilesWithinPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	var exact []int64
	for range 100000 {
		// Log-normal-ish latencies from 50 µs to a few seconds.
		v := int64(50 + r.ExpFloat64()*2000)
		if r.IntN(100) == 0 {
			v *= 500
		}
		exact = append(exact, v)
		h.Record(time.Duration(v) * time.Microsecond)
	}
	slices.Sort(exact)
	for _, q := range []float64{0.5, 0.95, 0.99, 0.999, 1} {
		idx := int(float64(len(exact))*q+0.999999) - 1
		want := exact[max(idx, 0)]
		got := h.Quantile(q).Microseconds()
		if got < want || float64(got-want) > float64(want)/subBuckets+1 {
			t.Errorf("q%.3f = %d µs, exact %d µs: outside 1/%d", q, got, want, subBuckets)
		}
	}
	if h.Max() != time.Duration(exact[len(exact)-1])*time.Microsecond || h.Count() != 100000 {
		t.Errorf("max %v count %d", h.Max(), h.Count())
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
