package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestNodeTxnCoordinatorFailover: a transactional id's coordinator stops
// while its producer has a transaction open. The next coordinator, which
// loaded the id from its replica of __transaction_state, carries the
// epoch on: a new producer with the id fences the old one, the open
// transaction is aborted (its markers sent to other brokers), and
// read_committed sees the committed transactions only.
func TestNodeTxnCoordinatorFailover(t *testing.T) {
	c := startCluster(t, "transaction.state.log.num.partitions=3", "transaction.abort.timed.out.transaction.cleanup.interval.ms=100")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	adm := kadm.NewClient(c.client())
	if _, err := adm.CreateTopic(ctx, 3, 3, nil, "ledger"); err != nil {
		t.Fatal(err)
	}
	opts := []kgo.Opt{kgo.TransactionalID("ledger-writer"), kgo.DefaultProduceTopic("ledger"),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}
	run := func(cl *kgo.Client, prefix string, commit bool) error {
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		for i := range 6 {
			cl.Produce(ctx, &kgo.Record{Value: []byte(prefix + "-" + string(rune('0'+i)))}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			return err
		}
		if !commit {
			return nil
		}
		return cl.EndTransaction(ctx, kgo.TryCommit)
	}
	old := c.client(opts...)
	if err := run(old, "first", true); err != nil {
		t.Fatal(err)
	}
	if err := run(old, "open", false); err != nil {
		t.Fatal(err)
	}
	fc := adm.FindTxnCoordinators(ctx, "ledger-writer")["ledger-writer"]
	if fc.Err != nil {
		t.Fatal(fc.Err)
	}
	c.stop(int(fc.NodeID) - 1)

	fresh := c.client(opts...)
	if err := run(fresh, "second", true); err != nil {
		t.Fatalf("a transaction with the next coordinator: %v", err)
	}
	if err := old.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the fenced producer committed through the next coordinator")
	}
	adm2 := kadm.NewClient(c.client())
	if got := adm2.FindTxnCoordinators(ctx, "ledger-writer")["ledger-writer"]; got.NodeID == fc.NodeID {
		t.Fatalf("coordinator still %d after it stopped", fc.NodeID)
	}
	dt, err := adm2.DescribeTransactions(ctx, "ledger-writer")
	if err != nil {
		t.Fatal(err)
	}
	if d := dt["ledger-writer"]; d.Err != nil || d.ProducerEpoch < 2 || d.State != "CompleteCommit" {
		t.Fatalf("described: %+v", d)
	}
	cons := c.client(kgo.ConsumeTopics("ledger"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var values []string
	eventually(t, 30*time.Second, "both committed transactions", func() bool {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer pcancel()
		cons.PollFetches(pctx).EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
		return len(values) >= 12
	})
	for _, v := range values {
		if strings.HasPrefix(v, "open-") {
			t.Fatalf("read_committed returned %q of the aborted transaction", v)
		}
	}
	if len(values) != 12 {
		t.Fatalf("read_committed: %v", values)
	}
}
