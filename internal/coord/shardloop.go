package coord

// What the loops of the group, transaction and share shards share: each
// handles a run of queued requests, writes their records in one flush,
// and answers what is left queued when it ends.

import "github.com/sluicelog/sluice/internal/record"

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
