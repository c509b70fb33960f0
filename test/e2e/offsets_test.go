package e2e

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func listedOffset(t testing.TB, l kadm.ListedOffsets, err error, topic string, p int32) int64 {
	t.Helper()
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	o, ok := l.Lookup(topic, p)
	if !ok {
		t.Fatalf("list offsets: %s/%d missing", topic, p)
	}
	if o.Err != nil {
		t.Fatalf("list offsets %s/%d: %v", topic, p, o.Err)
	}
	return o.Offset
}

// TestE2EListOffsets checks earliest, latest and by-timestamp lookups.
func TestE2EListOffsets(t *testing.T) {
	b := startBroker(t)
	adm := newAdmin(t, b.Addr())
	const topic = "offsets"
	createTopic(t, adm, topic, 1, nil)
	ctx := testCtx(t)

	if off := endOffset(t, adm, topic); off != 0 {
		t.Errorf("empty topic: latest offset %d, want 0", off)
	}

	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic))
	// Ten records an hour ago, one second apart, each in its own batch;
	// then ten in one batch, one second apart, so the lookup must find a
	// record inside a batch.
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: fmt.Appendf(nil, "single-%d", i), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	var batch []*kgo.Record
	for i := 10; i < 20; i++ {
		batch = append(batch, &kgo.Record{Value: fmt.Appendf(nil, "batched-%d", i), Timestamp: base.Add(time.Duration(i) * time.Second)})
	}
	if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
		t.Fatalf("produce batch: %v", err)
	}

	if off := startOffset(t, adm, topic); off != 0 {
		t.Errorf("earliest offset %d, want 0", off)
	}
	if off := endOffset(t, adm, topic); off != 20 {
		t.Errorf("latest offset %d, want 20", off)
	}
	cases := []struct {
		at   time.Time
		want int64
	}{
		{base.Add(-time.Minute), 0},
		{base, 0},
		{base.Add(4500 * time.Millisecond), 5},
		{base.Add(9 * time.Second), 9},
		{base.Add(14 * time.Second), 14}, // inside the last batch
		{base.Add(19 * time.Second), 19},
	}
	for _, c := range cases {
		l, err := adm.ListOffsetsAfterMilli(ctx, c.at.UnixMilli(), topic)
		if off := listedOffset(t, l, err, topic, 0); off != c.want {
			t.Errorf("offset for time base%+v: %d, want %d", c.at.Sub(base), off, c.want)
		}
	}
	// After the last timestamp there is no such record: Kafka answers -1,
	// which kadm turns into the end offset; never an offset inside the log.
	l, err := adm.ListOffsetsAfterMilli(ctx, base.Add(time.Minute).UnixMilli(), topic)
	if off := listedOffset(t, l, err, topic, 0); off != -1 && off != 20 {
		t.Errorf("offset for a time after every record: %d, want -1 or the end offset 20", off)
	}
}

// TestE2EDeleteRecords moves the log start offset with DeleteRecords and
// checks consumers start there.
func TestE2EDeleteRecords(t *testing.T) {
	b := startBroker(t)
	adm := newAdmin(t, b.Addr())
	const topic = "trim"
	createTopic(t, adm, topic, 1, nil)
	ctx := testCtx(t)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic))
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("r%d", i))).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 4})
	dr, err := adm.DeleteRecords(ctx, offs)
	if err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}
	r, ok := dr.Lookup(topic, 0)
	if !ok || r.Err != nil {
		t.Fatalf("DeleteRecords %s/0: %+v", topic, r)
	}
	if r.LowWatermark != 4 {
		t.Errorf("DeleteRecords low watermark %d, want 4", r.LowWatermark)
	}
	if off := startOffset(t, adm, topic); off != 4 {
		t.Errorf("start offset after DeleteRecords(4): %d, want 4", off)
	}
	got := consumeN(t, b.Addr(), topic, 6)
	if got[0].Offset != 4 || string(got[0].Value) != "r4" {
		t.Errorf("first record after DeleteRecords: offset %d %q, want 4 r4", got[0].Offset, got[0].Value)
	}

	// Beyond the high watermark is OFFSET_OUT_OF_RANGE.
	offs = kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 11})
	dr, err = adm.DeleteRecords(ctx, offs)
	if err == nil {
		if r, _ := dr.Lookup(topic, 0); r.Err == nil {
			t.Errorf("DeleteRecords past the end succeeded: %+v", r)
		}
	}
}

// TestE2ERetentionDeletesSegments runs a broker with tiny segments and a
// fast retention check; a topic with a short retention.ms loses its old
// segments, so the log start offset moves past 0.
func TestE2ERetentionDeletesSegments(t *testing.T) {
	b := startBroker(t, withSet("log.segment.bytes=16384", "log.retention.check.interval.ms=200"))
	adm := newAdmin(t, b.Addr())
	const topic = "short-lived"
	createTopic(t, adm, topic, 1, map[string]*string{"retention.ms": strp("1000")})
	ctx := testCtx(t)
	// Uncompressed and incompressible, so 60 records fill several
	// 16 KiB segments.
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	value := make([]byte, 2000)
	rand.New(rand.NewSource(1)).Read(value)
	for i := 0; i < 60; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	eventually(t, 45*time.Second, "log start offset > 0", func() error {
		l, err := adm.ListStartOffsets(ctx, topic)
		if err != nil {
			return err
		}
		o, _ := l.Lookup(topic, 0)
		if o.Err != nil {
			return o.Err
		}
		if o.Offset <= 0 {
			return fmt.Errorf("start offset %d", o.Offset)
		}
		return nil
	})
	start := startOffset(t, adm, topic)
	end := endOffset(t, adm, topic)
	if end != 60 {
		t.Errorf("end offset %d after retention, want 60 (retention never moves the end)", end)
	}
	if start < end {
		got := consumeN(t, b.Addr(), topic, int(end-start))
		if got[0].Offset != start {
			t.Errorf("first consumed offset %d, want the start offset %d", got[0].Offset, start)
		}
	}
	// Producing after retention continues at the end offset.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after retention: %v", err)
	}
	if end := endOffset(t, adm, topic); end != 61 {
		t.Errorf("end offset %d after one more record, want 61", end)
	}
}

func startOffset(t testing.TB, adm *kadm.Client, topic string) int64 {
	t.Helper()
	l, err := adm.ListStartOffsets(testCtx(t), topic)
	return listedOffset(t, l, err, topic, 0)
}

func endOffset(t testing.TB, adm *kadm.Client, topic string) int64 {
	t.Helper()
	l, err := adm.ListEndOffsets(testCtx(t), topic)
	return listedOffset(t, l, err, topic, 0)
}
