package partition

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/record"
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

// An acks=all produce waits for the high watermark in the leader epoch its
// batches were appended in. Leadership can move on (here: a new epoch,
// this node still leading) between StartProduce's start and its append,
// which waits for the change: the produce is then appended in the new
// epoch, and waiting in the old one would fail it with NOT_LEADER although
// it is committed, so a client's retry would append it twice.
func TestPartitionAcksAllWaitsInTheEpochItAppendedIn(t *testing.T) {
	f := newFixture(t)
	f.createTopic("epoch", 1, nil, []int32{testNode})
	p := f.partition("epoch", 0)
	before := p.LeaderEpoch()
	// An append in flight holds the leadership change back.
	held, err := p.StartProduce(f.batch(plain(1)), ProduceOptions{})
	noErr(t, err)
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: testNode})
	refreshed := runInBackground(func() error { return f.mgr.Refresh() })
	// Give the change time to wait for the gate, so the next produce
	// reads the old epoch, then queues behind the change.
	time.Sleep(50 * time.Millisecond)
	started := runInBackground(func() error {
		pending, err := p.StartProduce(f.batch(plain(2)), ProduceOptions{AcksAll: true})
		if err != nil {
			return err
		}
		_, err = pending.Wait(context.Background())
		return err
	})
	time.Sleep(20 * time.Millisecond)
	_, err = held.Wait(context.Background())
	noErr(t, err)
	noErr(t, waitErr(t, refreshed))
	require(t, p.LeaderEpoch() > before, "leader epoch %d, want past %d", p.LeaderEpoch(), before)
	noErr(t, waitErr(t, started))
	require(t, p.Offsets().HighWatermark == 3, "high watermark %d", p.Offsets().HighWatermark)
}

func runInBackground(fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	return ch
}

func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("timed out")
		return nil
	}
}

// An epoch's first records wait for the leader epoch checkpoint that
// knows the epoch: appended without it, a crash could leave records whose
// epoch the checkpoint has never heard of. A failed checkpoint refuses
// the append (the producer retries) and leaves the log as it was.
func TestPartitionAppendRefusedWhenEpochCheckpointFails(t *testing.T) {
	f := newFixture(t)
	efs := vfs.NewErrorFS(f.fs)
	f.open(efs)
	f.createTopic("ckpt", 1, nil, []int32{testNode})
	p := f.partition("ckpt", 0)
	efs.Inject(vfs.Rule{Op: vfs.OpWrite, PathContains: "leader-epoch-checkpoint", Count: -1})
	_, err := p.Append(f.batch(plain(2)))
	requireErrorIs(t, err, log.ErrStorage)
	require(t, p.log.LogEndOffset() == 0, "log end %d after a refused append", p.log.LogEndOffset())

	efs.Clear()
	res, err := p.Append(f.batch(plain(2)))
	noErr(t, err)
	require(t, res.BaseOffset == 0, "append after the checkpoint healed: %+v", res)
	data, err := vfs.ReadFile(f.fs, "/data/ckpt-0/leader-epoch-checkpoint", 1<<20)
	noErr(t, err)
	require(t, strings.Contains(string(data), "\n0 0"), "checkpoint %q does not know epoch 0 from offset 0", data)
}

// checkpointPanicFS panics, once armed, when the leader epoch checkpoint
// is created: a bug while an append holds its partition's gate (an
// epoch's first append writes the checkpoint under the gate).
type checkpointPanicFS struct {
	vfs.FS
	armed atomic.Bool
}

func (f *checkpointPanicFS) Create(name string) (vfs.File, error) {
	if strings.Contains(name, leaderEpochCheckpointFile) && f.armed.CompareAndSwap(true, false) {
		panic("checkpoint bug")
	}
	return f.FS.Create(name)
}

// A panic while StartProduce queues an append holds the partition's gate
// shared (and, for an idempotent batch, its producer's lock): it must fail
// that append and give both back. Otherwise the producer's next batch, and
// the next leadership change or checkpoint of the partition (which take
// the gate exclusively), wait for ever.
func TestPartitionStartProducePanicReleasesTheGate(t *testing.T) {
	f := newFixture(t)
	pfs := &checkpointPanicFS{FS: f.fs}
	f.open(pfs)
	f.createTopic("boom", 1, nil, []int32{testNode})
	p := f.partition("boom", 0)
	for _, spec := range []batchSpec{idem(7, 0, 0, 2), plain(1)} {
		pfs.armed.Store(true)
		_, err := p.StartProduce(f.batch(spec), ProduceOptions{AcksAll: true})
		require(t, err != nil && strings.Contains(err.Error(), "panic"), "StartProduce under a panic: %v", err)
	}
	retried := runInBackground(func() error {
		pending, err := p.StartProduce(f.batch(idem(7, 0, 0, 2)), ProduceOptions{AcksAll: true})
		if err != nil {
			return err
		}
		_, err = pending.Wait(context.Background())
		return err
	})
	noErr(t, waitErr(t, retried))
	noErr(t, waitErr(t, runInBackground(func() error { return f.mgr.Checkpoint() })))
	before := p.LeaderEpoch()
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: testNode})
	noErr(t, waitErr(t, runInBackground(func() error { return f.mgr.Refresh() })))
	require(t, p.LeaderEpoch() > before, "leader epoch %d, want past %d", p.LeaderEpoch(), before)
}

// A panic while a producer's first transactional batch was queued (here
// in the leader epoch checkpoint the epoch's first append writes, before
// the log takes the batch) left the transaction the append had opened
// provisionally in the partition's open set, while the producer's entry,
// still unknown, was dropped: the coordinator's abort marker is then
// ignored (no open transaction for an unknown producer), and the LSO
// stayed at the failed append's offset until a restart, so
// read_committed consumers stopped there.
func TestPartitionStartProducePanicLeavesNoTransactionOpen(t *testing.T) {
	f := newFixture(t)
	pfs := &checkpointPanicFS{FS: f.fs}
	f.open(pfs)
	f.createTopic("boom", 1, nil, []int32{testNode})
	p := f.partition("boom", 0)
	pfs.armed.Store(true)
	_, err := p.StartProduce(f.batch(txnBatch(9, 0, 0, 2)), ProduceOptions{AcksAll: true})
	require(t, err != nil && strings.Contains(err.Error(), "panic"), "StartProduce under a panic: %v", err)
	_, err = p.Append(f.batch(plain(1)))
	noErr(t, err)
	res, err := p.WriteTxnMarker(context.Background(), TxnMarker{ProducerID: 9, CoordinatorEpoch: 1})
	noErr(t, err)
	o := p.Offsets()
	require(t, o.HighWatermark == 1 && o.LastStableOffset == 1, "after the panic and the abort (%+v): %+v, want HW and LSO 1", res, o)
}

// A panic after the log queued an idempotent batch (here in the producer
// table's bookkeeping, its open-transaction map broken) failed the append
// at once, and the caller then recycled the bytes the log's queue still
// held (the request's frame, the recompression buffer): the next round
// wrote whatever the buffer held by then at the batch's offsets. The
// panic path now waits for the batch's round before it fails the append.
func TestPartitionStartProducePanicAfterQueueingWritesTheBatchFirst(t *testing.T) {
	f := newFixture(t)
	f.createTopic("boom", 1, nil, []int32{testNode})
	p := f.partition("boom", 0)
	_, err := p.Append(f.batch(txnBatch(9, 0, 0, 1)))
	noErr(t, err)
	p.producers.mu.Lock()
	ongoing := p.producers.ongoing
	p.producers.ongoing = nil // recording the next batch panics
	p.producers.mu.Unlock()
	records := f.batch(txnBatch(9, 0, 1, 1))
	_, err = p.StartProduce(records, ProduceOptions{AcksAll: true})
	require(t, err != nil && strings.Contains(err.Error(), "panic"), "StartProduce under a panic: %v", err)
	clear(records) // the caller reuses its buffer once the append failed
	p.producers.mu.Lock()
	p.producers.ongoing = ongoing
	p.producers.mu.Unlock()
	_, err = p.Append(f.batch(plain(1)))
	noErr(t, err)
	res, err := p.Read(0, ReadOptions{MaxBytes: 1 << 30, CurrentLeaderEpoch: -1})
	noErr(t, err)
	data, err := res.Records.AppendTo(nil)
	res.Records.Release()
	noErr(t, err)
	next := int64(0)
	for rest := data; len(rest) > 0; {
		batch, after, h, err := record.NextBatch(rest)
		noErr(t, err)
		_, err = record.ValidateBatch(batch)
		noErr(t, err)
		require(t, h.BaseOffset == next, "batch at %d, want %d", h.BaseOffset, next)
		next, rest = h.NextOffset(), after
	}
	require(t, next == 3, "batches up to %d, want 3", next)
}

// A panic once the log had taken a plain batch, but before the append
// knew it (inside log.Enqueue, after the batch joined the queue), failed
// the append at once, and the caller recycled the bytes the log's queue
// still held: the next round wrote whatever the buffer held by then. The
// log now reports what it took (log.AppendOptions.Queued), and the panic
// path waits for that round before it fails the append.
func TestPartitionStartProducePanicInsideEnqueueWritesThePlainBatchFirst(t *testing.T) {
	f := newFixture(t)
	f.createTopic("boom", 1, nil, []int32{testNode})
	p := f.partition("boom", 0)
	p.enqueueFault = func() {
		p.enqueueFault = nil
		panic("queueing bug")
	}
	records := f.batch(plain(2))
	_, err := p.StartProduce(records, ProduceOptions{AcksAll: true})
	require(t, err != nil && strings.Contains(err.Error(), "panic"), "StartProduce under a panic: %v", err)
	clear(records) // the caller reuses its buffer once the append failed
	_, err = p.Append(f.batch(plain(1)))
	noErr(t, err)
	headers := readAll(t, p, 0)
	require(t, len(headers) == 2 && headers[0].LastOffset() == 1 && headers[1].BaseOffset == 2,
		"the log after the panic: %+v, want the batch of 2 records, then 1", headers)
}
