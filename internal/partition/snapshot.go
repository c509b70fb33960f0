package partition

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/internal/vfs"
)

// The producer-state snapshot, <partition dir>/%020d.snapshot, named by the
// log end offset it covers: the state of every idempotent producer after
// the batches below that offset. It is Sluice's own format (Kafka's differs;
// no tool reads these files) and must not change without a new version.
// All integers are big-endian.
//
//	offset  size  field
//	     0     2  version (= 2; 1 is still read)
//	     2     4  CRC-32C (Castagnoli) of every byte after this field
//	     6     8  log end offset covered (the same as in the file name)
//	    14     4  producer count
//	    18     …  producers, by producer id:
//	                8  producer id
//	                2  producer epoch
//	                8  last update (broker clock, ms): drives expiry
//	             (version 2 only:)
//	                4  coordinator epoch of the last marker (-1: none)
//	                8  first offset of the ongoing transaction (-1: none)
//	             (all versions:)
//	                1  batch count (0-5), then each batch, oldest first:
//	                   4 first sequence   4 last sequence
//	                   8 first offset     8 last offset
//	                   8 max timestamp
//
// Version 2 carries open transactions across restarts: the last stable
// offset of a partition whose snapshot lies past a transaction's first
// batch could not be rebuilt from the log tail alone.
const (
	snapshotVersion        = 2
	snapshotVersion1       = 1
	snapshotHeaderSize     = 18
	snapshotProducerSizeV1 = 19 // before its batches
	snapshotProducerSize   = 31
	snapshotBatchSize      = 32
	snapshotSuffix         = ".snapshot"
	snapshotsKept          = 2
	snapshotMaxBytesFactor = snapshotProducerSize + producerBatchesKept*snapshotBatchSize
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	// errInvalidSnapshot: a snapshot file does not decode; load falls back
	// to an older one, or to the log.
	errInvalidSnapshot = errors.New("invalid producer state snapshot")
)

func snapshotName(offset int64) string { return fmt.Sprintf("%020d%s", offset, snapshotSuffix) }

// parseSnapshotName reads the offset out of a snapshot file name.
func parseSnapshotName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, snapshotSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return n, err == nil && n >= 0
}

func encodeSnapshot(offset int64, producers []snapshotProducer) []byte {
	b := make([]byte, snapshotHeaderSize, snapshotHeaderSize+len(producers)*snapshotMaxBytesFactor)
	binary.BigEndian.PutUint16(b[0:], snapshotVersion)
	binary.BigEndian.PutUint64(b[6:], uint64(offset))
	binary.BigEndian.PutUint32(b[14:], uint32(len(producers)))
	for _, p := range producers {
		b = binary.BigEndian.AppendUint64(b, uint64(p.id))
		b = binary.BigEndian.AppendUint16(b, uint16(p.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(p.lastUpdateMs))
		b = binary.BigEndian.AppendUint32(b, uint32(p.coordinatorEpoch))
		b = binary.BigEndian.AppendUint64(b, uint64(p.currentTxnFirstOffset))
		b = append(b, byte(len(p.batches)))
		for _, batch := range p.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(batch.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(batch.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(batch.firstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(batch.lastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(batch.maxTimestamp))
		}
	}
	binary.BigEndian.PutUint32(b[2:], crc32.Checksum(b[6:], castagnoli))
	return b
}

// decodeSnapshot checks and decodes a snapshot; every count is checked
// against the bytes that remain before anything is allocated for it.
func decodeSnapshot(b []byte) (offset int64, producers []snapshotProducer, err error) {
	if len(b) < snapshotHeaderSize {
		return 0, nil, fmt.Errorf("%w: %d bytes", errInvalidSnapshot, len(b))
	}
	version := binary.BigEndian.Uint16(b[0:])
	producerSize := snapshotProducerSize
	switch version {
	case snapshotVersion:
	case snapshotVersion1:
		producerSize = snapshotProducerSizeV1
	default:
		return 0, nil, fmt.Errorf("%w: version %d", errInvalidSnapshot, version)
	}
	if stored, sum := binary.BigEndian.Uint32(b[2:]), crc32.Checksum(b[6:], castagnoli); stored != sum {
		return 0, nil, fmt.Errorf("%w: stored CRC %08x, computed %08x", errInvalidSnapshot, stored, sum)
	}
	offset = int64(binary.BigEndian.Uint64(b[6:]))
	count := binary.BigEndian.Uint32(b[14:])
	rest := b[snapshotHeaderSize:]
	if offset < 0 || uint64(count)*uint64(producerSize) > uint64(len(rest)) {
		return 0, nil, fmt.Errorf("%w: offset %d, %d producers in %d bytes", errInvalidSnapshot, offset, count, len(rest))
	}
	producers = make([]snapshotProducer, 0, count)
	for range count {
		if len(rest) < producerSize {
			return 0, nil, fmt.Errorf("%w: truncated producer", errInvalidSnapshot)
		}
		p := snapshotProducer{
			id:                    int64(binary.BigEndian.Uint64(rest[0:])),
			epoch:                 int16(binary.BigEndian.Uint16(rest[8:])),
			lastUpdateMs:          int64(binary.BigEndian.Uint64(rest[10:])),
			coordinatorEpoch:      -1,
			currentTxnFirstOffset: -1,
		}
		if version == snapshotVersion {
			p.coordinatorEpoch = int32(binary.BigEndian.Uint32(rest[18:]))
			p.currentTxnFirstOffset = int64(binary.BigEndian.Uint64(rest[22:]))
		}
		n := int(rest[producerSize-1])
		rest = rest[producerSize:]
		if n > producerBatchesKept || len(rest) < n*snapshotBatchSize || p.id < 0 || p.currentTxnFirstOffset < -1 {
			return 0, nil, fmt.Errorf("%w: producer %d with %d batches", errInvalidSnapshot, p.id, n)
		}
		p.batches = make([]producerBatch, n)
		for i := range p.batches {
			p.batches[i] = producerBatch{
				firstSeq:     int32(binary.BigEndian.Uint32(rest[0:])),
				lastSeq:      int32(binary.BigEndian.Uint32(rest[4:])),
				firstOffset:  int64(binary.BigEndian.Uint64(rest[8:])),
				lastOffset:   int64(binary.BigEndian.Uint64(rest[16:])),
				maxTimestamp: int64(binary.BigEndian.Uint64(rest[24:])),
			}
			rest = rest[snapshotBatchSize:]
		}
		producers = append(producers, p)
	}
	if len(rest) != 0 {
		return 0, nil, fmt.Errorf("%w: %d trailing bytes", errInvalidSnapshot, len(rest))
	}
	return offset, producers, nil
}

// listSnapshots returns the offsets of the snapshots in dir, newest first,
// removing temporary files a crash left behind.
func listSnapshots(fsys vfs.FS, dir string) ([]int64, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return nil, err
	}
	var offsets []int64
	for _, name := range names {
		if strings.HasSuffix(name, snapshotSuffix+vfs.TempSuffix) {
			if err := fsys.Remove(dir + "/" + name); err != nil {
				return nil, err
			}
			continue
		}
		if off, ok := parseSnapshotName(name); ok {
			offsets = append(offsets, off)
		}
	}
	slices.Sort(offsets)
	slices.Reverse(offsets)
	return offsets, nil
}
