package coord

import (
	"errors"
	"fmt"

	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/record"
)

// replayPartition reads a coordinator partition from its log start to its
// log end and hands each batch to loadBatch, in offset order. It is how a
// shard that takes over a partition rebuilds its state, for the group and
// the transaction coordinators alike.
//
// To the log end, not the high watermark: a new leader's high watermark
// catches up only as followers fetch, and its whole log is what the state
// will be (Kafka's coordinators load to the log end too). A close of stop
// ends the replay early, when the shard is unloaded while loading. buf is
// the shard's read buffer, returned grown for the next load.
func replayPartition(p *partition.Partition, topic string, index int32, stop <-chan struct{}, buf []byte,
	loadBatch func(batch []byte, h *record.Header) error) ([]byte, error) {
	offsets := p.Offsets()
	for offset := offsets.LogStartOffset; offset < offsets.LogEndOffset; {
		select {
		case <-stop:
			return buf, errors.New("unloaded while loading")
		default:
		}
		res, err := p.Read(offset, partition.ReadOptions{MaxBytes: loadReadBytes, MinOneBatch: true, CurrentLeaderEpoch: -1, ToLogEnd: true})
		if err != nil {
			return buf, err
		}
		buf, err = res.Records.AppendTo(buf[:0])
		res.Records.Release()
		if err != nil {
			return buf, err
		}
		if len(buf) == 0 {
			break
		}
		for rest := buf; len(rest) > 0; {
			batch, next, h, err := record.NextBatch(rest)
			if err != nil {
				return buf, fmt.Errorf("%s-%d at %d: %w", topic, index, offset, err)
			}
			rest, offset = next, h.NextOffset()
			if err := loadBatch(batch, &h); err != nil {
				return buf, fmt.Errorf("%s-%d at %d: %w", topic, index, h.BaseOffset, err)
			}
		}
	}
	return buf, nil
}

// ReplayRecords reads a partition of topic from its log start to its log
// end and hands each record of its data batches to fn, in offset order (a
// null value is a tombstone). The share-group driver (internal/share)
// loads the share groups it keeps in __consumer_offsets with it, beside
// the group coordinator's shards that load the other records there.
func ReplayRecords(p *partition.Partition, topic string, index int32, stop <-chan struct{}, fn func(key, value []byte) error) error {
	_, err := replayPartition(p, topic, index, stop, nil, func(batch []byte, h *record.Header) error {
		if h.IsControl() {
			return nil
		}
		return record.Records(batch, maxDecompressedBytes, func(r *record.Record) error { return fn(r.Key, r.Value) })
	})
	return err
}
