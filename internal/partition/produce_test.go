package partition

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/vfs"
)

// An idempotent producer's next batch can be queued while its previous one
// has not been written yet: StartProduce releases the producer's lock once
// the batch is queued and recorded, so the produce handler can serve the
// pipelined next request and both share a write round. Were the lock held
// until Wait, the second StartProduce below would never return.
func TestPartitionStartProducePipelinesIdempotentBatches(t *testing.T) {
	f := newFixture(t)
	f.createTopic("pipe", 1, nil, []int32{testNode})
	p := f.partition("pipe", 0)
	first, err := p.StartProduce(f.batch(idem(7, 0, 0, 2)), ProduceOptions{AcksAll: true})
	noErr(t, err)
	started := make(chan *PendingProduce, 1)
	go func() {
		second, err := p.StartProduce(f.batch(idem(7, 0, 2, 3)), ProduceOptions{AcksAll: true})
		if err != nil {
			t.Error(err)
		}
		started <- second
	}()
	var second *PendingProduce
	select {
	case second = <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the producer's next batch was not queued while the first waited for its write")
	}
	require(t, p.Offsets().HighWatermark == 0, "high watermark %d before any Wait", p.Offsets().HighWatermark)
	if second == nil {
		t.FailNow()
	}
	res2, err := second.Wait(context.Background())
	noErr(t, err)
	res1, err := first.Wait(context.Background())
	noErr(t, err)
	require(t, res1.BaseOffset == 0 && res1.LastOffset == 1 && res2.BaseOffset == 2 && res2.LastOffset == 4,
		"offsets %+v then %+v", res1, res2)
	require(t, p.Offsets().HighWatermark == 5, "high watermark %d", p.Offsets().HighWatermark)

	// A retry of a batch is answered with its offsets, once durable; a
	// batch out of sequence is still refused.
	pending, err := p.StartProduce(f.batch(idem(7, 0, 2, 3)), ProduceOptions{})
	noErr(t, err)
	dup, err := pending.Wait(context.Background())
	noErr(t, err)
	require(t, dup.Duplicate && dup.BaseOffset == 2, "retry answered %+v", dup)
	_, err = p.StartProduce(f.batch(idem(7, 0, 9, 1)), ProduceOptions{})
	requireErrorIs(t, err, ErrOutOfOrderSequence)
}

// A batch recorded in its producer's state when it was queued, whose write
// then failed, must not reach a producer state snapshot: the log never
// held it, so after a restart its retry would be answered as a duplicate
// with offsets that other records take, an acknowledgement of records
// nobody stored. (Pipelining records a batch before it is durable; only
// the failed log keeps the record from being trusted until the restart.)
func TestPartitionFailedPipelinedBatchIsNotSnapshotted(t *testing.T) {
	f := newFixture(t)
	efs := vfs.NewErrorFS(f.fs)
	f.open(efs)
	f.createTopic("fail", 1, nil, []int32{testNode})
	p := f.partition("fail", 0)
	_, err := p.Append(f.batch(idem(7, 0, 0, 2)))
	noErr(t, err)

	efs.Inject(vfs.Rule{Op: vfs.OpWrite, PathContains: ".log", Count: -1})
	pending, err := p.StartProduce(f.batch(idem(7, 0, 2, 3)), ProduceOptions{})
	noErr(t, err)
	_, err = pending.Wait(context.Background())
	requireErrorIs(t, err, log.ErrStorage)
	// Until the restart, a retry is refused too: its original never was
	// durable.
	pending, err = p.StartProduce(f.batch(idem(7, 0, 2, 3)), ProduceOptions{})
	if err == nil {
		_, err = pending.Wait(context.Background())
	}
	requireErrorIs(t, err, log.ErrStorage)

	efs.Clear()
	// Closing reports the failed log; the snapshot taken on the way out
	// is what is checked.
	t.Logf("closing: %v", errors.Join(f.mgr.Close(), f.logs.Close()))
	f.open(f.fs)
	p = f.partition("fail", 0)
	// Another producer's records take the offsets the failed batch had.
	_, err = p.Append(f.batch(plain(3)))
	noErr(t, err)
	retry, err := p.Append(f.batch(idem(7, 0, 2, 3)))
	noErr(t, err)
	require(t, !retry.Duplicate && retry.BaseOffset == 5,
		"the retry of a batch that was never written was answered %+v, want appended at 5", retry)
}
