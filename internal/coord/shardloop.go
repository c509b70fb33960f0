package coord

// What the group, transaction and share shards share: callers hand a
// step to a shard's inbox and wait for its reply; each shard's loop
// handles a run of queued requests, writes their records in one flush,
// and answers what is left queued when it ends.

import (
	"context"

	"github.com/sluicelog/sluice/internal/record"
)

// sendStep hands req to a shard's inbox, unless the shard ends or ctx is
// done first.
func sendStep[Req any](ctx context.Context, b *shardBase, inbox chan<- Req, req Req) error {
	select {
	case inbox <- req:
		return nil
	case <-b.done:
		return b.exitErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// awaitReply waits for a sent step's reply, whose own error errOf gives.
// A shard that ended answers with why, unless the reply came first.
func awaitReply[Rep any](ctx context.Context, b *shardBase, reply <-chan Rep, errOf func(Rep) error) (Rep, error) {
	var none Rep
	select {
	case r := <-reply:
		return r, errOf(r)
	case <-b.done:
		select {
		case r := <-reply:
			return r, errOf(r)
		default:
			return none, b.exitErr()
		}
	case <-ctx.Done():
		return none, ctx.Err()
	}
}

// batchTargetBytes splits one flush's records into batches well under
// max.message.bytes.
const batchTargetBytes = 256 << 10

// coordinatorBatchOptions is how a coordinator writes its own records: no
// producer, no sequence, stamped now.
func coordinatorBatchOptions(nowMs int64) record.BatchOptions {
	return record.BatchOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		TimestampType: record.CreateTime, FirstTimestamp: nowMs}
}

// encodeBatches appends to buf the n records kv gives, in batches of about
// batchTargetBytes, or in one batch when opts is a transactional
// producer's.
func encodeBatches(buf []byte, opts record.BatchOptions, n int, kv func(i int) (key, value []byte)) ([]byte, error) {
	batch := make([]record.Record, 0, min(n, 1024))
	size := 0
	var err error
	for i := range n {
		key, value := kv(i)
		batch = append(batch, record.Record{Key: key, Value: value})
		size += len(key) + len(value) + 16
		if (size >= batchTargetBytes && !opts.Transactional) || i == n-1 {
			if buf, err = record.AppendBatch(buf, opts, batch); err != nil {
				return buf, err
			}
			batch, size = batch[:0], 0
		}
	}
	return buf, nil
}

// handleQueued handles first, then whatever else is queued, up to
// maxStepsPerFlush in all, so that one flush writes the records of them
// all.
func handleQueued[R any](inbox <-chan R, first R, handle func(R)) {
	handle(first)
	for n := 1; n < maxStepsPerFlush; n++ {
		select {
		case req := <-inbox:
			handle(req)
		default:
			return
		}
	}
}

// answerQueued answers every request still queued as a shard ends.
func answerQueued[R any](inbox <-chan R, answer func(R)) {
	for {
		select {
		case req := <-inbox:
			answer(req)
		default:
			return
		}
	}
}
