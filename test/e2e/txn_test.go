package e2e

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Transactions end to end: franz-go's transactional producer and
// GroupTransactSession against the real binary, with the broker killed
// (SIGKILL) where it hurts most.

// txnBroker is a broker whose transaction coordinator checks for timed-out
// transactions often, so a test need not wait Kafka's 10 s.
func txnBroker(t *testing.T) *broker {
	return startBroker(t, withSet("transaction.abort.timed.out.transaction.cleanup.interval.ms=100"))
}

// readCommitted reads every record of topic below the last stable offset
// with a read_committed consumer and returns the values, polling until
// want records were read or the bound passed (want < 0: read until the
// topic is quiet for a second).
func readCommitted(t *testing.T, addr, topic string, want int) []string {
	t.Helper()
	return readIsolated(t, addr, topic, want, kgo.ReadCommitted())
}

func readIsolated(t *testing.T, addr, topic string, want int, level kgo.IsolationLevel) []string {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(level),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	var out []string
	deadline := time.Now().Add(60 * time.Second)
	quietSince := time.Now()
	for time.Now().Before(deadline) {
		if want >= 0 && len(out) >= want {
			break
		}
		if want < 0 && time.Since(quietSince) > time.Second {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, string(r.Value))
			quietSince = time.Now()
		})
	}
	return out
}

// TestE2ETxnReadCommittedNeverShowsAborted: one producer alternates
// committed and aborted transactions over three partitions; read_committed
// sees exactly the committed records, read_uncommitted sees them all.
func TestE2ETxnReadCommittedNeverShowsAborted(t *testing.T) {
	b := txnBroker(t)
	createTopic(t, newAdmin(t, b.Addr()), "mixed", 3, nil)
	ctx := testCtx(t)
	p := newClient(t, b.Addr(), kgo.TransactionalID("mixed-producer"), kgo.DefaultProduceTopic("mixed"),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	const txns, perTxn = 20, 9
	wantCommitted := 0
	for i := range txns {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		commit := i%2 == 0
		for j := range perTxn {
			v := fmt.Sprintf("abort-%d-%d", i, j)
			if commit {
				v = fmt.Sprintf("commit-%d-%d", i, j)
			}
			p.Produce(ctx, &kgo.Record{Value: []byte(v)}, nil)
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
		if commit {
			wantCommitted += perTxn
		}
	}
	got := readCommitted(t, b.Addr(), "mixed", -1)
	seen := map[string]bool{}
	for _, v := range got {
		if !strings.HasPrefix(v, "commit-") {
			t.Fatalf("read_committed returned %q from an aborted transaction", v)
		}
		if seen[v] {
			t.Fatalf("read_committed returned %q twice", v)
		}
		seen[v] = true
	}
	if len(seen) != wantCommitted {
		t.Fatalf("read_committed: %d committed records, want %d", len(seen), wantCommitted)
	}
	if all := readIsolated(t, b.Addr(), "mixed", txns*perTxn, kgo.ReadUncommitted()); len(all) != txns*perTxn {
		t.Fatalf("read_uncommitted: %d records, want %d", len(all), txns*perTxn)
	}
}

// TestE2ETxnZombieIsFenced: a second producer with the same transactional
// id fences the first: the zombie's open transaction is aborted and its
// commit refused; the new producer's commit is visible.
func TestE2ETxnZombieIsFenced(t *testing.T) {
	b := txnBroker(t)
	createTopic(t, newAdmin(t, b.Addr()), "zombie", 1, nil)
	ctx := testCtx(t)
	opts := []kgo.Opt{kgo.TransactionalID("shared-id"), kgo.DefaultProduceTopic("zombie")}
	zombie := newClient(t, b.Addr(), opts...)
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fresh := newClient(t, b.Addr(), opts...)
	if err := fresh.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := fresh.ProduceSync(ctx, &kgo.Record{Value: []byte("fresh")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := fresh.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	err := zombie.EndTransaction(ctx, kgo.TryCommit)
	if err == nil {
		t.Fatal("the fenced producer committed")
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Logf("zombie's commit failed with %v", err)
	}
	got := readCommitted(t, b.Addr(), "zombie", -1)
	if len(got) != 1 || got[0] != "fresh" {
		t.Fatalf("read_committed: %q, want only the new producer's record", got)
	}
}

// TestE2ETxnTimeoutAborts: a transaction left open past its timeout is
// aborted by the coordinator: its records never become visible, its
// producer cannot commit it, and the partition's last stable offset moves
// on, so a later transaction of another producer is readable.
func TestE2ETxnTimeoutAborts(t *testing.T) {
	b := txnBroker(t)
	createTopic(t, newAdmin(t, b.Addr()), "hung", 1, nil)
	ctx := testCtx(t)
	hung := newClient(t, b.Addr(), kgo.TransactionalID("hung-id"), kgo.DefaultProduceTopic("hung"),
		kgo.TransactionTimeout(time.Second))
	if err := hung.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := hung.ProduceSync(ctx, &kgo.Record{Value: []byte("hung")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // past the timeout and several checks
	if err := hung.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("a timed-out transaction was committed")
	}
	other := newClient(t, b.Addr(), kgo.TransactionalID("other-id"), kgo.DefaultProduceTopic("hung"))
	if err := other.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := other.ProduceSync(ctx, &kgo.Record{Value: []byte("later")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := other.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	got := readCommitted(t, b.Addr(), "hung", 1)
	if len(got) != 1 || got[0] != "later" {
		t.Fatalf("read_committed: %q, want only the later transaction", got)
	}
}

// TestE2ETxnKill9DuringCommitsIsAllOrNothing: producers commit
// transactions of ten records over three partitions while the broker is
// killed with SIGKILL; after a restart every transaction is either wholly
// visible to read_committed or wholly absent, and every commit that was
// acknowledged is visible.
func TestE2ETxnKill9DuringCommitsIsAllOrNothing(t *testing.T) {
	b := txnBroker(t)
	createTopic(t, newAdmin(t, b.Addr()), "atomic", 3, nil)
	const producers, perTxn = 3, 10
	var acked sync.Map // "p-t" -> true once EndTransaction(commit) returned nil
	var committed atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID(fmt.Sprintf("atomic-%d", p)),
				kgo.DefaultProduceTopic("atomic"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
				kgo.RetryTimeout(5*time.Second), kgo.TransactionTimeout(10*time.Second))
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for txn := 0; ctx.Err() == nil; txn++ {
				if cl.BeginTransaction() != nil {
					return
				}
				for k := range perTxn {
					cl.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("%d-%d-%d", p, txn, k))}, nil)
				}
				if cl.Flush(ctx) != nil {
					return
				}
				if cl.EndTransaction(ctx, kgo.TryCommit) != nil {
					return
				}
				acked.Store(fmt.Sprintf("%d-%d", p, txn), true)
				committed.Add(1)
			}
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for committed.Load() < 15 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b.kill9()
	cancel()
	wg.Wait()
	if committed.Load() == 0 {
		t.Fatal("no transaction committed before the kill")
	}
	b.restart()
	// Prepared transactions get their markers from the restarted
	// coordinator, and open ones are aborted at their timeout (10 s); until
	// then a transaction may be visible on one partition and not yet on
	// another (read_committed is per partition, as in Kafka), so the check
	// waits for the coordinator to settle every transaction.
	waitTxnsSettled(t, b.Addr())
	counts := map[string]int{}
	for _, v := range readCommitted(t, b.Addr(), "atomic", -1) {
		parts := strings.Split(v, "-")
		counts[parts[0]+"-"+parts[1]]++
	}
	for txn, n := range counts {
		if n != perTxn {
			t.Errorf("transaction %s: %d of %d records visible", txn, n, perTxn)
		}
	}
	acked.Range(func(k, _ any) bool {
		if counts[k.(string)] != perTxn {
			t.Errorf("acknowledged transaction %s is not visible", k)
		}
		return true
	})
	t.Logf("%d transactions acknowledged before kill -9, %d visible after", committed.Load(), len(counts))
}

// waitTxnsSettled waits until the coordinator lists no transaction open
// or being completed (ListTransactions).
func waitTxnsSettled(t *testing.T, addr string) {
	t.Helper()
	adm := newAdmin(t, addr)
	eventually(t, 60*time.Second, "no transaction open or being completed", func() error {
		ls, err := adm.ListTransactions(testCtx(t), nil, []string{"Ongoing", "PrepareCommit", "PrepareAbort"})
		if err != nil {
			return err
		}
		if ids := ls.TransactionalIDs(); len(ids) > 0 {
			return fmt.Errorf("still unsettled: %v", ids)
		}
		return nil
	})
}

// TestE2ETxnETLExactlyOnceAcrossKill9 is the exactly-once pipeline: a
// franz-go GroupTransactSession consumes "in", writes a transformed copy
// of each record to "out" and commits its offsets in the same
// transaction. The broker is killed with SIGKILL mid-stream and the
// pipeline restarted; read_committed must then see every input record's
// output exactly once.
func TestE2ETxnETLExactlyOnceAcrossKill9(t *testing.T) {
	b := txnBroker(t)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "in", 3, nil)
	createTopic(t, adm, "out", 3, nil)
	const total = 3000
	p := newClient(t, b.Addr(), kgo.DefaultProduceTopic("in"))
	for i := range total {
		p.Produce(testCtx(t), &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}, nil)
	}
	if err := p.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	p.Close()

	var done atomic.Int64
	runETL := func(addr string, stop <-chan struct{}) {
		sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(addr), kgo.TransactionalID("etl"),
			kgo.ConsumerGroup("etl-group"), kgo.ConsumeTopics("in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(), kgo.DefaultProduceTopic("out"), kgo.SessionTimeout(6*time.Second),
			kgo.RebalanceTimeout(6*time.Second), kgo.TransactionTimeout(10*time.Second), kgo.RetryTimeout(5*time.Second),
			kgo.FetchMaxBytes(64<<10), kgo.FetchMaxPartitionBytes(16<<10))
		if err != nil {
			t.Error(err)
			return
		}
		defer sess.Close()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			// Small transactions, so the kill lands mid-stream.
			fs := sess.PollRecords(ctx, 50)
			cancel()
			if fs.IsClientClosed() {
				return
			}
			var recs []*kgo.Record
			fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
			if len(recs) == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				continue
			}
			ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
			for _, r := range recs {
				sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: append([]byte("out-"), r.Value...)}, nil)
			}
			ok, err := sess.End(ctx, kgo.TryCommit)
			cancel()
			if ok && err == nil {
				done.Add(int64(len(recs)))
			}
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { runETL(b.Addr(), stop) })
	deadline := time.Now().Add(60 * time.Second)
	for done.Load() < total/3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	b.kill9()
	close(stop)
	wg.Wait()
	before := done.Load()
	t.Logf("%d records through the pipeline before kill -9", before)
	if before >= total {
		t.Fatal("the pipeline finished before the kill: the test proves nothing")
	}
	b.restart()

	stop = make(chan struct{})
	wg.Go(func() { runETL(b.Addr(), stop) })
	var got []string
	eventually(t, 90*time.Second, "every input record in out", func() error {
		got = readCommitted(t, b.Addr(), "out", total)
		if len(got) < total {
			return fmt.Errorf("%d of %d", len(got), total)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	// The session's Close aborted what it had open; read once more, to the
	// end, and check each input appears exactly once.
	waitTxnsSettled(t, b.Addr())
	counts := map[string]int{}
	for _, v := range readCommitted(t, b.Addr(), "out", -1) {
		counts[v]++
	}
	for i := range total {
		if n := counts["out-"+strconv.Itoa(i)]; n != 1 {
			t.Errorf("input %d appears %d times in out", i, n)
		}
	}
}
