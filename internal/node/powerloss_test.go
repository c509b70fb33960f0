package node

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/vfs"
)

// TestNodePowerLossKeepsAcknowledged runs a whole node on MemFS while an
// idempotent producer and an offset committer work against it over
// loopback, takes what a power loss at that instant would leave
// (MemFS.CrashClone: the synced bytes, plus a random, possibly torn, part
// of the rest), starts a new node on it, and checks that every record and
// commit acknowledged before the crash is there. A kill -9 keeps the page
// cache, so only this reaches the write-ahead journal's replay with a
// real produce path, partition layer and controller above it.
//
// SLUICE_LONG_TESTS=1 runs many more crashes.
func TestNodePowerLossKeepsAcknowledged(t *testing.T) {
	cycles := 4
	if os.Getenv("SLUICE_LONG_TESTS") == "1" {
		cycles = 30
	}
	for _, mode := range []struct{ name, set string }{
		{"segments", "log.flush.journal=false"},
		{"journal", "log.flush.journal=true"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			pl := &powerLoss{t: t, rng: rand.New(rand.NewPCG(seed, 17)), fs: vfs.NewMem(),
				sets: []string{mode.set, "log.flush.journal.file.bytes=1048576",
					"log.flush.offset.checkpoint.interval.ms=200",
					// MemFS holds a preallocated index's bytes for real.
					"offsets.topic.num.partitions=2", "transaction.state.log.num.partitions=2",
					"transaction.abort.timed.out.transaction.cleanup.interval.ms=200"},
				acked: map[partitionOffset]string{}, commits: map[int32]int64{}, starts: map[int32]int64{},
				txns: map[string]bool{}}
			for cycle := range cycles {
				pl.cycle(cycle)
			}
			n := pl.start()
			pl.verify(n)
			shutdown(t, n)
			// Without a replay the journal's side of this test would
			// pass on the segments' syncs alone.
			if mode.name == "journal" && pl.replayed == 0 {
				t.Errorf("no start after %d crashes replayed the journal", cycles)
			}
			t.Logf("%d journal bytes replayed over %d crashes", pl.replayed, cycles)
		})
	}
}

const (
	powerLossTopic      = "powerloss"
	powerLossPartitions = 4
	powerLossGroup      = "powerloss-group"
	powerLossTxnTopic   = "powerloss-txn"
)

// powerLoss is one run of crashes on one evolving MemFS.
type powerLoss struct {
	t    *testing.T
	rng  *rand.Rand
	fs   *vfs.MemFS
	sets []string

	acked   map[partitionOffset]string // every record acknowledged so far
	commits map[int32]int64            // the highest commit acknowledged per partition
	starts  map[int32]int64            // the highest DeleteRecords offset acknowledged per partition
	txns    map[string]bool            // transactional records whose EndTxn was acknowledged: committed or not
	// replayed adds up what the starts' journal replays appended.
	replayed int64
}

func (pl *powerLoss) start() *Node {
	pl.t.Helper()
	cfg := loadConfig(pl.t, append([]string{"log.dirs=/data", "listeners=PLAINTEXT://127.0.0.1:0"}, pl.sets...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{Config: cfg, FS: pl.fs, Logger: quietLogger})
	if err != nil {
		pl.t.Fatalf("start on the crashed file system: %v", err)
	}
	pl.replayed += n.logs.JournalReplayedBytes()
	return n
}

// cycle starts a node on what the last crash left, checks that it holds
// everything acknowledged, works against it, and crashes it.
func (pl *powerLoss) cycle(cycle int) {
	t := pl.t
	n := pl.start()
	if cycle == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		configs := map[string]*string{"segment.bytes": kadm.StringPtr("65536"), "segment.index.bytes": kadm.StringPtr("4096")}
		adm := kadm.NewClient(client(t, n))
		if _, err := adm.CreateTopic(ctx, powerLossPartitions, 1, configs, powerLossTopic); err != nil {
			t.Fatal(err)
		}
		if _, err := adm.CreateTopic(ctx, 2, 1, configs, powerLossTxnTopic); err != nil {
			t.Fatal(err)
		}
	} else {
		pl.verify(n)
	}
	w := startPowerLossWork(t, n, cycle)
	acked, commits, starts, txns := w.waitAcknowledged(500 + pl.rng.IntN(3000))
	// The acknowledgements are read before the crash is taken, so each
	// of them was given before the crash's instant; the clients keep
	// going meanwhile, so the crash lands in the middle of their work.
	crashed := pl.fs.CrashClone(pl.rng)
	w.stop()
	shutdown(t, n)
	maps.Copy(pl.acked, acked)
	for p, o := range commits {
		pl.commits[p] = max(pl.commits[p], o)
	}
	for p, o := range starts {
		pl.starts[p] = max(pl.starts[p], o)
	}
	maps.Copy(pl.txns, txns)
	t.Logf("cycle %d: %d records, commits on %d partitions, deletions on %d and %d transactional records acknowledged before the crash",
		cycle, len(acked), len(commits), len(starts), len(txns))
	pl.fs = crashed
}

// verify checks n against everything acknowledged before the crashes.
func (pl *powerLoss) verify(n *Node) {
	t := pl.t
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	total := pl.waitEnds(ctx, adm) - pl.checkStarts(ctx, adm)
	got := consumeAll(t, ctx, n, powerLossTopic, total)
	lost := 0
	for k, v := range pl.acked {
		if k.offset < pl.starts[k.partition] {
			delete(pl.acked, k) // deleted by an acknowledged DeleteRecords
			continue
		}
		if got[k] != v {
			if lost++; lost <= 5 {
				t.Errorf("acknowledged %.20s… at %v; after the crash %.20q", v, k, got[k])
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged records lost or changed", lost, len(pl.acked))
	}
	seen := map[string]partitionOffset{}
	for k, v := range got {
		if prev, dup := seen[v]; dup {
			t.Fatalf("%.20s… stored twice, at %v and %v", v, prev, k)
		}
		seen[v] = k
	}
	pl.verifyTxns(ctx, n, adm)
	// The group coordinator loads its shards after the start.
	fetched, err := adm.FetchOffsets(ctx, powerLossGroup)
	for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		fetched, err = adm.FetchOffsets(ctx, powerLossGroup)
	}
	if err != nil {
		t.Fatalf("FetchOffsets: %v", err)
	}
	for p, want := range pl.commits {
		if o, ok := fetched.Lookup(powerLossTopic, p); !ok || o.Err != nil || o.At < want {
			t.Fatalf("partition %d: committed offset %+v after the crash, acknowledged %d", p, o, want)
		}
	}
}

// verifyTxns reads the transactional topic read_committed once no
// transaction is open (the one the crash left open times out in a
// second), and checks that it holds every record of a commit acknowledged
// and none of an abort acknowledged.
func (pl *powerLoss) verifyTxns(ctx context.Context, n *Node, adm *kadm.Client) {
	t := pl.t
	for deadline := time.Now().Add(15 * time.Second); ; {
		ends, err := adm.ListEndOffsets(ctx, powerLossTxnTopic)
		stable, serr := adm.ListCommittedOffsets(ctx, powerLossTxnTopic)
		if err == nil && serr == nil && sameOffsets(ends, stable, powerLossTxnTopic, 2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transactional topic: last stable offsets %v never reached the ends %v (%v, %v)", stable, ends, err, serr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := client(t, n, kgo.ConsumeTopics(powerLossTxnTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	defer c.Close()
	seen := map[string]bool{}
	// Everything is stable, so a quiet half second means it was all read.
	for quiet := 0; quiet < 2; {
		pollCtx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		fetches := c.PollFetches(pollCtx)
		cancel()
		if fetches.NumRecords() == 0 {
			quiet++
			continue
		}
		quiet = 0
		fetches.EachRecord(func(r *kgo.Record) {
			if seen[string(r.Value)] {
				t.Fatalf("transactional record %s read twice", r.Value)
			}
			seen[string(r.Value)] = true
		})
	}
	for v, committed := range pl.txns {
		if seen[v] != committed {
			t.Fatalf("transactional record %s: ended acknowledged as committed=%v, read_committed finds it: %v", v, committed, seen[v])
		}
	}
}

func sameOffsets(a, b kadm.ListedOffsets, topic string, partitions int32) bool {
	for p := range partitions {
		x, okx := a.Lookup(topic, p)
		y, oky := b.Lookup(topic, p)
		if !okx || !oky || x.Err != nil || y.Err != nil || x.Offset != y.Offset {
			return false
		}
	}
	return true
}

// checkStarts checks that every DeleteRecords acknowledged holds, moves
// the starts to where the log starts now (records below are gone, even if
// the deletion that took them was not acknowledged), and returns the
// records below them.
func (pl *powerLoss) checkStarts(ctx context.Context, adm *kadm.Client) int {
	starts, err := adm.ListStartOffsets(ctx, powerLossTopic)
	if err != nil {
		pl.t.Fatalf("ListStartOffsets: %v", err)
	}
	below := 0
	for p := range int32(powerLossPartitions) {
		s, ok := starts.Lookup(powerLossTopic, p)
		if !ok || s.Err != nil {
			pl.t.Fatalf("start offset of partition %d: %+v", p, s)
		}
		if s.Offset < pl.starts[p] {
			pl.t.Fatalf("partition %d starts at %d after the crash; DeleteRecords to %d was acknowledged", p, s.Offset, pl.starts[p])
		}
		pl.starts[p] = s.Offset
		below += int(s.Offset)
	}
	return below
}

// waitEnds waits until every partition's high watermark covers its
// acknowledged records (a restarted leader moves it to its log end on its
// own), for up to 10 s, and returns the records in the topic: verify then
// names the records missing.
func (pl *powerLoss) waitEnds(ctx context.Context, adm *kadm.Client) int {
	want := map[int32]int64{}
	for k := range pl.acked {
		want[k.partition] = max(want[k.partition], k.offset+1)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(ctx, powerLossTopic)
		if err != nil {
			pl.t.Fatalf("ListEndOffsets: %v", err)
		}
		total, short := 0, false
		for p := range int32(powerLossPartitions) {
			e, ok := ends.Lookup(powerLossTopic, p)
			if !ok || e.Err != nil {
				pl.t.Fatalf("end offset of partition %d: %+v", p, e)
			}
			short = short || e.Offset < want[p]
			total += int(e.Offset)
		}
		if !short || time.Now().After(deadline) {
			return total
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// powerLossWork is a producer and an offset committer working until
// stopped, recording what the node acknowledged.
type powerLossWork struct {
	t       *testing.T
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	acked   map[partitionOffset]string
	commits map[int32]int64
	starts  map[int32]int64
	txns    map[string]bool
}

func startPowerLossWork(t *testing.T, n *Node, cycle int) *powerLossWork {
	ctx, cancel := context.WithCancel(context.Background())
	w := &powerLossWork{t: t, cancel: cancel, acked: map[partitionOffset]string{}, commits: map[int32]int64{},
		starts: map[int32]int64{}, txns: map[string]bool{}}
	p := client(t, n, kgo.DefaultProduceTopic(powerLossTopic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0), kgo.RecordDeliveryTimeout(20*time.Second),
		kgo.ProducerBatchMaxBytes(16<<10), kgo.MaxBufferedRecords(1000))
	adm := kadm.NewClient(client(t, n))
	w.wg.Add(4)
	go w.deleteRecords(ctx, adm)
	go w.transact(ctx, client(t, n, kgo.TransactionalID("powerloss"), kgo.TransactionTimeout(time.Second),
		kgo.DefaultProduceTopic(powerLossTxnTopic), kgo.RecordDeliveryTimeout(20*time.Second)), cycle)
	go func() {
		defer w.wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			value := fmt.Sprintf("c%d-%07d-%0200d", cycle, i, i)
			p.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%13), Value: []byte(value)}, func(r *kgo.Record, err error) {
				if err == nil {
					w.mu.Lock()
					w.acked[partitionOffset{r.Partition, r.Offset}] = value
					w.mu.Unlock()
				}
			})
		}
	}()
	go func() {
		defer w.wg.Done()
		// Each cycle commits above every earlier cycle's offsets.
		for i := int64(cycle)<<32 + 1; ctx.Err() == nil; i++ {
			part := int32(i % powerLossPartitions)
			offsets := kadm.Offsets{}
			offsets.Add(kadm.Offset{Topic: powerLossTopic, Partition: part, At: i, LeaderEpoch: -1})
			resp, err := adm.CommitOffsets(ctx, powerLossGroup, offsets)
			if err == nil && resp.Ok() {
				w.mu.Lock()
				w.commits[part] = max(w.commits[part], i)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// deleteRecords now and then deletes a partition's records up to some
// way below its highest acknowledged offset, so that replays meet log
// starts moved over rounds the journal holds.
func (w *powerLossWork) deleteRecords(ctx context.Context, adm *kadm.Client) {
	defer w.wg.Done()
	for i := 0; ctx.Err() == nil; i++ {
		time.Sleep(20 * time.Millisecond)
		part := int32(i % powerLossPartitions)
		w.mu.Lock()
		before := int64(-1)
		for k := range w.acked {
			before = max(before, k.offset-30)
		}
		w.mu.Unlock()
		if before <= 0 {
			continue
		}
		offsets := kadm.Offsets{}
		offsets.Add(kadm.Offset{Topic: powerLossTopic, Partition: part, At: before, LeaderEpoch: -1})
		resp, err := adm.DeleteRecords(ctx, offsets)
		if err != nil {
			continue
		}
		if r, ok := resp.Lookup(powerLossTopic, part); ok && r.Err == nil {
			w.mu.Lock()
			w.starts[part] = max(w.starts[part], r.LowWatermark)
			w.mu.Unlock()
		}
	}
}

// transact runs transactions of a few records, committing two in three
// and aborting the rest, until the first error (the crash's shutdown).
func (w *powerLossWork) transact(ctx context.Context, p *kgo.Client, cycle int) {
	defer w.wg.Done()
	for i := 0; ctx.Err() == nil; i++ {
		if err := p.BeginTransaction(); err != nil {
			return
		}
		var values []string
		for k := range 3 {
			values = append(values, fmt.Sprintf("t%d-%d-%d", cycle, i, k))
			p.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "%d", k), Value: []byte(values[k])}, nil)
		}
		commit := i%3 != 0
		if err := p.Flush(ctx); err != nil {
			return
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			return
		}
		w.mu.Lock()
		for _, v := range values {
			w.txns[v] = commit
		}
		w.mu.Unlock()
	}
}

// waitAcknowledged waits until at least records were acknowledged (or
// 20 s passed) and returns a copy of the acknowledgements at that instant.
func (w *powerLossWork) waitAcknowledged(records int) (map[partitionOffset]string, map[int32]int64, map[int32]int64, map[string]bool) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		w.mu.Lock()
		if len(w.acked) >= records || time.Now().After(deadline) {
			defer w.mu.Unlock()
			if len(w.acked) == 0 {
				w.t.Fatal("nothing acknowledged in 20 s")
			}
			return maps.Clone(w.acked), maps.Clone(w.commits), maps.Clone(w.starts), maps.Clone(w.txns)
		}
		w.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
}

func (w *powerLossWork) stop() {
	w.cancel()
	w.wg.Wait()
}
