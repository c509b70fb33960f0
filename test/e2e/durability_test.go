package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ack is one record the broker acknowledged with acks=all.
type ack struct {
	partition int32
	offset    int64
	value     string
}

// TestE2EDurabilityKill9 produces with acks=all while the broker is
// killed with SIGKILL, three times, restarting on the same data dir each
// time: every acknowledged record must be readable at its acknowledged
// offset, in order, with no record stored twice.
//
// With log.flush.journal=true the acknowledgements come from the
// write-ahead journal's sync, and the segments' tails are left to its
// checkpoints: a kill then finds them behind, and the restart's replay
// must put back every acknowledged record.
func TestE2EDurabilityKill9(t *testing.T) {
	t.Run("segments", func(t *testing.T) { testDurabilityKill9(t) })
	t.Run("journal", func(t *testing.T) { testDurabilityKill9(t, withSet("log.flush.journal=true")) })
}

func testDurabilityKill9(t *testing.T, opts ...brokerOpt) {
	b := startBroker(t, opts...)
	const topic, partitions = "durable", 3
	createTopic(t, newAdmin(t, b.Addr()), topic, partitions, nil)

	var all []ack
	for cycle := 0; cycle < 3; cycle++ {
		if cycle > 0 {
			b.restart()
			verifyAcked(t, b.Addr(), topic, partitions, all)
		}
		acks := produceUntilKilled(t, b, topic, cycle)
		if len(acks) == 0 {
			t.Fatalf("cycle %d: no record acknowledged before the kill", cycle)
		}
		t.Logf("cycle %d: %d records acknowledged before kill -9", cycle, len(acks))
		all = append(all, acks...)
	}
	b.restart()
	verifyAcked(t, b.Addr(), topic, partitions, all)
}

// produceUntilKilled produces with acks=all from a goroutine, kills the
// broker with SIGKILL mid-stream once enough records were acknowledged
// (or a bound passed), and returns the acknowledgements in callback order.
func produceUntilKilled(t *testing.T, b *broker, topic string, cycle int) []ack {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.MaxBufferedRecords(2000),
		kgo.RecordDeliveryTimeout(15*time.Second),
		kgo.DialTimeout(2*time.Second))
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
			r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%31), Value: fmt.Appendf(nil, "c%d-%07d", cycle, i)}
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				if err != nil {
					return // in flight at the kill: may or may not be stored
				}
				mu.Lock()
				acks = append(acks, ack{r.Partition, r.Offset, string(r.Value)})
				mu.Unlock()
			})
		}
	}()

	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acks)
		mu.Unlock()
		if n >= 3000+cycle*1000 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.kill9()
	cancel()
	wg.Wait()
	// Close fails whatever is still buffered; acks is final after it.
	cl.Close()
	mu.Lock()
	defer mu.Unlock()
	return append([]ack(nil), acks...)
}

// readAll reads every partition of topic from offset 0 to its end offset
// and returns the values by partition and offset. It fails the test if
// the offsets are not dense from 0.
func readAll(t *testing.T, addr, topic string, partitions int32) map[int32][]string {
	t.Helper()
	ctx := testCtx(t)
	adm := newAdmin(t, addr)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListStartOffsets: %v", err)
	}
	want := map[int32]int64{}
	total := 0
	for p := int32(0); p < partitions; p++ {
		e, ok := ends.Lookup(topic, p)
		s, _ := starts.Lookup(topic, p)
		if !ok || e.Err != nil || s.Err != nil {
			t.Fatalf("offsets of %s/%d: end %+v start %+v", topic, p, e, s)
		}
		if s.Offset != 0 {
			t.Errorf("%s/%d: log start offset %d, want 0 (nothing was deleted)", topic, p, s.Offset)
		}
		want[p] = e.Offset
		total += int(e.Offset)
	}
	out := map[int32][]string{}
	if total == 0 {
		return out
	}
	got := consumeN(t, addr, topic, total)
	for _, r := range got {
		if int64(len(out[r.Partition])) != r.Offset {
			t.Fatalf("%s/%d: read offset %d after %d records: offsets not dense", topic, r.Partition, r.Offset, len(out[r.Partition]))
		}
		out[r.Partition] = append(out[r.Partition], string(r.Value))
	}
	for p, end := range want {
		if int64(len(out[p])) != end {
			t.Errorf("%s/%d: read %d records, end offset %d", topic, p, len(out[p]), end)
		}
	}
	return out
}

// verifyAcked checks every acknowledged record against the log.
func verifyAcked(t *testing.T, addr, topic string, partitions int32, acks []ack) {
	t.Helper()
	log := readAll(t, addr, topic, partitions)
	seen := map[string]string{}
	for p, values := range log {
		for off, v := range values {
			where := fmt.Sprintf("%d/%d", p, off)
			if prev, dup := seen[v]; dup {
				t.Errorf("value %s stored twice: at %s and %s", v, prev, where)
			}
			seen[v] = where
		}
	}
	lastOffset := map[int32]int64{}
	lost := 0
	for _, a := range acks {
		values := log[a.partition]
		if a.offset >= int64(len(values)) || values[a.offset] != a.value {
			lost++
			if lost <= 10 {
				got := "<missing>"
				if a.offset < int64(len(values)) {
					got = values[a.offset]
				}
				t.Errorf("acknowledged %s at %d/%d; log has %s there", a.value, a.partition, a.offset, got)
			}
		}
		if prev, ok := lastOffset[a.partition]; ok && a.offset <= prev {
			t.Errorf("partition %d acknowledged offset %d after %d: acknowledgements out of order", a.partition, a.offset, prev)
		}
		lastOffset[a.partition] = a.offset
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged records lost or moved", lost, len(acks))
	}
}

// TestE2ETornSegmentRecovers kills the broker, cuts the last batch of the
// active segment in half, restarts: without the write-ahead journal the
// log recovers to the last whole batch; with it (the default) the
// journal's replay puts the torn batch back, since it was acknowledged
// from the journal's sync. Either way offsets stay dense and new records
// continue from there.
func TestE2ETornSegmentRecovers(t *testing.T) {
	t.Run("segments", func(t *testing.T) { testTornSegmentRecovers(t, false) })
	t.Run("journal", func(t *testing.T) { testTornSegmentRecovers(t, true) })
}

func testTornSegmentRecovers(t *testing.T, journal bool) {
	b := startBroker(t, withSet(fmt.Sprintf("log.flush.journal=%v", journal)))
	const topic, n = "torn", 30
	createTopic(t, newAdmin(t, b.Addr()), topic, 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic))
	ctx := testCtx(t)
	for i := 0; i < n; i++ {
		// One record per ProduceSync: one batch per record.
		r := &kgo.Record{Value: fmt.Appendf(nil, "t-%02d-%s", i, strings.Repeat("x", 100))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		if r.Offset != int64(i) {
			t.Fatalf("record %d acknowledged at offset %d", i, r.Offset)
		}
	}
	cl.Close()
	b.kill9()

	seg := activeSegment(t, b.dataDir, topic+"-0")
	cut, records := tearLastBatch(t, seg, 5)
	t.Logf("cut %s to %d bytes; the torn batch starts at offset %d", seg, cut, records)

	b.restart()
	if records != n-1 {
		t.Fatalf("torn batch has base offset %d, want %d (one batch per record)", records, n-1)
	}
	log := readAll(t, b.Addr(), topic, 1)
	switch got := len(log[0]); {
	case !journal && got != n-1:
		t.Errorf("after recovery the log has %d records, want %d (the torn batch dropped)", got, n-1)
	case journal && got != n:
		t.Errorf("after recovery the log has %d records, want %d (the torn batch replayed from the journal)", got, n)
	}
	for i, v := range log[0] {
		if want := fmt.Sprintf("t-%02d-", i); !strings.HasPrefix(v, want) {
			t.Errorf("offset %d: %.8s..., want %s...", i, v, want)
		}
	}
	cl = newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic))
	r := kgo.StringRecord("after-recovery")
	if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
		t.Fatalf("produce after recovery: %v", err)
	}
	if r.Offset != int64(len(log[0])) {
		t.Errorf("first record after recovery at offset %d, want %d", r.Offset, len(log[0]))
	}
}

// activeSegment finds dir (a partition directory such as torn-0) under
// the data dir and returns its newest .log file.
func activeSegment(t *testing.T, dataDir, dir string) string {
	t.Helper()
	var partDir string
	_ = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == dir {
			partDir = path
			return filepath.SkipAll
		}
		return nil
	})
	if partDir == "" {
		t.Fatalf("no partition directory %s under %s", dir, dataDir)
	}
	logs, err := filepath.Glob(filepath.Join(partDir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no .log segment in %s (%v)", partDir, err)
	}
	sort.Strings(logs) // zero-padded base offsets sort numerically
	return logs[len(logs)-1]
}

// tearLastBatch walks the record batches of a segment file, truncates the
// file cutBytes before the end of its last whole batch, and returns the
// new size and the torn batch's base offset: the number of records the
// partition keeps.
func tearLastBatch(t *testing.T, path string, cutBytes int64) (int64, int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const headerLen = 61 // record batch v2 header, through the records count
	var lastStart, lastEnd int64 = -1, -1
	for pos := int64(0); pos+headerLen <= int64(len(data)); {
		length := int64(binary.BigEndian.Uint32(data[pos+8 : pos+12]))
		end := pos + 12 + length
		if length < headerLen-12 || end > int64(len(data)) {
			break // zero fill or garbage past the last batch
		}
		lastStart, lastEnd = pos, end
		pos = end
	}
	if lastStart < 0 {
		t.Fatalf("%s: no whole record batch in %d bytes", path, len(data))
	}
	cut := lastEnd - cutBytes
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	return cut, int(binary.BigEndian.Uint64(data[lastStart : lastStart+8]))
}
