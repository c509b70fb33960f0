package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestE2ECompactionKill9 runs the real binary with a busy cleaner (tiny
// segments, dirty ratio 0.01, 20 ms backoff) on a compacted topic while a
// producer writes 31 keys with acks=all, kills it with SIGKILL mid-stream,
// three times, restarting on the same data dir. After every restart a
// read from offset 0 gives increasing
// offsets and only values that were produced, with their own keys, and
// every key reads its latest acknowledged value, or a later one that was
// stored without its acknowledgement arriving before the kill. The log was
// compacted: fewer records are read than were acknowledged, and after a
// final clean stop no .cleaned or .swap file is left.
func TestE2ECompactionKill9(t *testing.T) {
	b := startBroker(t, withSet("log.cleaner.backoff.ms=20"))
	const topic = "compacted"
	createTopic(t, newAdmin(t, b.Addr()), topic, 1, map[string]*string{
		"cleanup.policy": strp("compact"), "segment.bytes": strp("8192"), "min.cleanable.dirty.ratio": strp("0.01"),
	})
	var acked []ack
	for cycle := range 3 {
		if cycle > 0 {
			b.restart()
			checkCompacted(t, b, topic, acked)
		}
		acks := produceKeyedUntilKilled(t, b, topic, cycle)
		if len(acks) == 0 {
			t.Fatalf("cycle %d: no record acknowledged before the kill", cycle)
		}
		acked = append(acked, acks...)
	}
	b.restart()
	read := checkCompacted(t, b, topic, acked)
	if read >= len(acked) {
		t.Fatalf("read %d records of %d acknowledged: nothing was compacted", read, len(acked))
	}
	// While the broker runs, a clean in progress has its .cleaned file. A
	// clean stop aborts it and removes the file, and every open settled
	// what the kills left: none may remain.
	if err := b.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	_ = filepath.WalkDir(b.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && (strings.HasSuffix(path, ".cleaned") || strings.HasSuffix(path, ".swap")) {
			t.Errorf("%s left after a clean stop", path)
		}
		return nil
	})
	t.Logf("%d records acknowledged over 3 kills; %d left after compaction", len(acked), read)
}

// produceKeyedUntilKilled is produceUntilKilled with values that name their
// key, so a read can check both.
func produceKeyedUntilKilled(t *testing.T, b *broker, topic string, cycle int) []ack {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond), kgo.MaxBufferedRecords(2000),
		kgo.RecordDeliveryTimeout(15*time.Second), kgo.DialTimeout(2*time.Second))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer cl.Close()
	var mu sync.Mutex
	var acks []ack
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			key := fmt.Sprintf("k%02d", i%31)
			r := &kgo.Record{Key: []byte(key), Value: fmt.Appendf(nil, "%s=c%d-%07d", key, cycle, i)}
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acks = append(acks, ack{r.Partition, r.Offset, string(r.Value)})
					mu.Unlock()
				}
			})
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acks)
		mu.Unlock()
		if n >= 5000+cycle*1000 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.kill9()
	cancel()
	wg.Wait()
	cl.Close()
	mu.Lock()
	defer mu.Unlock()
	return append([]ack(nil), acks...)
}

// checkCompacted reads the topic from offset 0 to its end and checks it
// against the acknowledgements; it returns how many records it read.
func checkCompacted(t *testing.T, b *broker, topic string, acked []ack) int {
	t.Helper()
	ctx := testCtx(t)
	ends, err := newAdmin(t, b.Addr()).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	end, _ := ends.Lookup(topic, 0)
	cl := newClient(t, b.Addr(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	latest := map[string]ack{} // key -> the last record read
	last, n := int64(-1), 0
	for last < end.Offset-1 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read to offset %d of %d: %v", last, end.Offset, ctx.Err())
		}
		fetches.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset <= last {
				t.Fatalf("offset %d after %d", r.Offset, last)
			}
			if !strings.HasPrefix(string(r.Value), string(r.Key)+"=") {
				t.Fatalf("offset %d: key %s holds value %s", r.Offset, r.Key, r.Value)
			}
			last, n = r.Offset, n+1
			latest[string(r.Key)] = ack{0, r.Offset, string(r.Value)}
		})
	}
	cl.Close()
	latestAcked := map[string]ack{}
	for _, a := range acked {
		key, _, _ := strings.Cut(a.value, "=")
		latestAcked[key] = a
	}
	for key, a := range latestAcked {
		got, ok := latest[key]
		switch {
		case !ok:
			t.Errorf("key %s: nothing read; acknowledged %s at %d", key, a.value, a.offset)
		case got.offset < a.offset || got.offset == a.offset && got.value != a.value:
			t.Errorf("key %s reads %s at %d; acknowledged %s at %d", key, got.value, got.offset, a.value, a.offset)
		}
	}
	return n
}
