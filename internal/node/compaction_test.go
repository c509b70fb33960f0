package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/log"
)

// TestNodeCompactedTopicReadFromStartWithGaps: a compact topic on a node
// whose cleaner runs in the background; once it has compacted, franz-go
// reads the topic from offset 0 across the gaps compaction left: offsets
// increase, every key reads its latest value, deleted keys stay deleted,
// and ListOffsets still answers the log start and end. The idempotent
// producer goes on producing after the clean, and the cleaner's metrics
// count what it removed.
func TestNodeCompactedTopicReadFromStartWithGaps(t *testing.T) {
	n := startNode(t, t.TempDir(), "log.cleaner.backoff.ms=20")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	configs := map[string]*string{"cleanup.policy": ptr("compact"), "segment.bytes": ptr("2048"),
		"min.cleanable.dirty.ratio": ptr("0.01"), "delete.retention.ms": ptr("3600000")}
	if _, err := adm.CreateTopic(ctx, 1, 1, configs, "changelog"); err != nil {
		t.Fatal(err)
	}
	p := client(t, n, kgo.DefaultProduceTopic("changelog"))
	latest := map[string]string{} // "" is deleted
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			key := fmt.Sprintf("key-%d", i%10)
			r := &kgo.Record{Key: []byte(key), Value: []byte(fmt.Sprintf("value-%d-%040d", i, i))}
			if i%13 == 0 {
				r.Value = nil // a tombstone
			}
			if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
			latest[key] = string(r.Value)
		}
	}
	produce(0, 400)
	l, ok := n.logs.Log(log.TopicPartition{Topic: "changelog", Partition: 0})
	if !ok {
		t.Fatal("no log for changelog-0")
	}
	eventually(t, 30*time.Second, "the background cleaner to compact changelog-0", func() bool {
		return l.FirstDirtyOffset() > 200
	})
	produce(400, 420) // the idempotent producer's sequence survived the clean

	c := client(t, n, kgo.ConsumeTopics("changelog"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	view := map[string]string{}
	last, count := int64(-1), 0
	for last < 419 {
		fetches := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read up to offset %d: %v", last, err)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset <= last {
				t.Fatalf("offset %d after %d", r.Offset, last)
			}
			last = r.Offset
			count++
			view[string(r.Key)] = string(r.Value)
		})
	}
	if count >= 420 {
		t.Fatalf("read %d records of 420: nothing was compacted", count)
	}
	for key, want := range latest {
		if view[key] != want {
			t.Fatalf("key %s reads %q, latest is %q", key, view[key], want)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, "changelog")
	if err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(ctx, "changelog")
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup("changelog", 0)
	start, _ := starts.Lookup("changelog", 0)
	if end.Offset != 420 || start.Offset != 0 {
		t.Fatalf("ListOffsets: start %d end %d, want 0 and 420", start.Offset, end.Offset)
	}
	m := scrapeNode(t, n)
	// A clean's totals are added when it ends, after its swaps: one may
	// still be running, so only check that cleans were counted.
	if removed := series(t, m, `sluice_log_cleaner_records_removed_total`); removed <= 0 {
		t.Errorf("records removed metric %v, but %d of 420 records are gone", removed, 420-count)
	}
	if recopy := series(t, m, `kafka_log_logcleaner_cleaner_recopy_percent`); recopy <= 0 || recopy > 100 {
		t.Errorf("recopy percent %v", recopy)
	}
	t.Logf("read %d records of 420 produced; the first dirty offset is %d", count, l.FirstDirtyOffset())
}

func ptr(s string) *string { return &s }
