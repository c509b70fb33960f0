package console_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/console"
)

// TestConsoleSamplerOnManualClock: the sampler's time is the console's
// clock, so with a manual clock the rates are exact: 10 records appended
// between two samples 5 s apart read as 2 records/s.
func TestConsoleSamplerOnManualClock(t *testing.T) {
	manual := clock.NewManual(time.Unix(1_700_000_000, 0))
	c := startClusterWith(t, console.Options{Clock: manual}) // samples every 5 s of manual time
	type point struct {
		TimeMs    int64   `json:"time_ms"`
		RecordsIn float64 `json:"records_in"`
		BytesIn   float64 `json:"bytes_in"`
	}
	points := func(n int) []point {
		t.Helper()
		deadline := time.Now().Add(testTimeout)
		for {
			var doc struct{ Points []point }
			_, body := c.get(t, "/api/throughput")
			if err := json.Unmarshal([]byte(body), &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Points) >= n {
				return doc.Points
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d throughput samples, want %d", len(doc.Points), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	points(1) // the sample taken at start
	c.createTopic(t, "metered", 1)
	manual.Advance(5 * time.Second)
	points(2) // the topic's first sample: a baseline
	var recs []*kgo.Record
	for range 10 {
		recs = append(recs, &kgo.Record{Topic: "metered", Value: []byte("0123456789")})
	}
	c.produce(t, recs...)
	manual.Advance(5 * time.Second)
	p := points(3)
	last := p[2]
	if last.TimeMs != time.Unix(1_700_000_010, 0).UnixMilli() || last.RecordsIn != 2 || last.BytesIn <= 0 {
		t.Fatalf("third sample = %+v, want t0+10 s, 2 records/s and some bytes", last)
	}
}

// TestConsoleSamplerOnFirstVisit: with SampleOnFirstVisit nothing is
// sampled until a page is asked for, the first request starts the sampler
// (its start sample appears), and Close of a console nobody visited
// returns at once instead of waiting for a sampler that never ran.
func TestConsoleSamplerOnFirstVisit(t *testing.T) {
	unvisited, err := console.New(console.Options{Brokers: []string{"127.0.0.1:1"}, SampleOnFirstVisit: true})
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { unvisited.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(testTimeout):
		t.Fatal("Close of an unvisited console did not return")
	}

	c := startClusterWith(t, console.Options{SampleOnFirstVisit: true})
	deadline := time.Now().Add(testTimeout)
	for {
		var doc struct{ Points []json.RawMessage }
		_, body := c.get(t, "/api/throughput")
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Points) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no throughput sample after the first visit")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
