package partition

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/record"
)

// keyedBatch builds a batch of n records in codec; keyless lists the
// record indexes that get no key.
func (f *fixture) keyedBatch(codec record.Codec, producerID int64, sequence int32, n int, keyless ...int) []byte {
	f.t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Key: fmt.Appendf(nil, "key-%d", i),
			Value: bytes.Repeat(fmt.Appendf(nil, "value %d ", i), 20), TimestampDelta: int64(i)}
	}
	for _, i := range keyless {
		recs[i].Key = nil
	}
	b, err := record.AppendBatch(nil, record.BatchOptions{Codec: codec, ProducerID: producerID, ProducerEpoch: 2,
		BaseSequence: sequence, FirstTimestamp: f.nowMs()}, recs)
	noErr(f.t, err)
	return b
}

// readBatches returns the stored batches from offset, whole.
func readBatches(t testing.TB, p *Partition, offset int64) [][]byte {
	t.Helper()
	res, err := p.Read(offset, ReadOptions{MaxBytes: 1 << 30, CurrentLeaderEpoch: -1})
	noErr(t, err)
	defer res.Records.Release()
	data, err := res.Records.AppendTo(nil)
	noErr(t, err)
	var out [][]byte
	for rest := data; len(rest) > 0; {
		batch, next, _, err := record.NextBatch(rest)
		noErr(t, err)
		out = append(out, batch)
		rest = next
	}
	return out
}

func recordKeysAndValues(t testing.TB, batch []byte) []string {
	t.Helper()
	var out []string
	noErr(t, record.Records(batch, 1<<20, func(r *record.Record) error {
		out = append(out, fmt.Sprintf("%d %q=%q nil=%v", r.OffsetDelta, r.Key, r.Value, r.Key == nil))
		return nil
	}))
	return out
}

// TestPartitionCompactedTopicRefusesKeylessRecords: one keyless record
// fails the whole append with per-record errors, and nothing is written.
func TestPartitionCompactedTopicRefusesKeylessRecords(t *testing.T) {
	for _, codec := range []record.Codec{record.CodecNone, record.CodecZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			f := newFixture(t)
			f.createTopic("c", 1, map[string]string{config.CleanupPolicy: "compact,delete"}, []int32{1})
			f.createTopic("d", 2, nil, []int32{1})
			p := f.partition("c", 0)

			_, err := p.Append(f.keyedBatch(codec, -1, -1, 5, 1, 3))
			requireErrorIs(t, err, ErrNoKeyCompactedTopic)
			var refused *RecordErrors
			require(t, errors.As(err, &refused), "error %v is not a RecordErrors", err)
			require(t, refused.Total == 2 && len(refused.Records) == 2 &&
				refused.Records[0].BatchIndex == 1 && refused.Records[1].BatchIndex == 3,
				"record errors %+v", refused)
			require(t, p.Offsets().LogEndOffset == 0, "a refused append wrote: LEO %d", p.Offsets().LogEndOffset)

			_, err = p.Append(f.keyedBatch(codec, -1, -1, 5))
			noErr(t, err)
			// A delete-only topic takes keyless records.
			_, err = f.partition("d", 0).Append(f.keyedBatch(codec, -1, -1, 5, 0, 1, 2, 3, 4))
			noErr(t, err)
		})
	}
}

// TestPartitionCompressionType stores batches in the topic's codec,
// keeping offsets, producer fields and records; producer keeps the bytes
// as sent.
func TestPartitionCompressionType(t *testing.T) {
	for _, tc := range []struct {
		compressionType string
		sent, want      record.Codec
	}{
		{"producer", record.CodecSnappy, record.CodecSnappy},
		{"zstd", record.CodecNone, record.CodecZstd},
		{"zstd", record.CodecGzip, record.CodecZstd},
		{"lz4", record.CodecZstd, record.CodecLZ4},
		{"gzip", record.CodecLZ4, record.CodecGzip},
		{"snappy", record.CodecNone, record.CodecSnappy},
		{"uncompressed", record.CodecGzip, record.CodecNone},
		{"zstd", record.CodecZstd, record.CodecZstd},
	} {
		t.Run(fmt.Sprintf("%s-from-%v", tc.compressionType, tc.sent), func(t *testing.T) {
			f := newFixture(t)
			f.createTopic("t", 1, map[string]string{config.CompressionType: tc.compressionType}, []int32{1})
			p := f.partition("t", 0)
			_, err := p.Append(f.keyedBatch(record.CodecNone, -1, -1, 3)) // offsets 0-2
			noErr(t, err)
			sent := f.keyedBatch(tc.sent, 77, 0, 10)
			original := append([]byte{}, sent...)
			res, err := p.Append(sent)
			noErr(t, err)
			require(t, res.BaseOffset == 3 && res.LastOffset == 12, "offsets %+v", res)
			// A retry of the idempotent batch is recognised after
			// recompression, with the original offsets.
			dup, err := p.Append(append([]byte{}, original...))
			noErr(t, err)
			require(t, dup.Duplicate && dup.BaseOffset == 3, "retry %+v", dup)

			stored := readBatches(t, p, 3)
			require(t, len(stored) == 1, "%d batches stored", len(stored))
			h, err := record.ValidateBatch(stored[0])
			noErr(t, err)
			want, _ := record.ParseHeader(original)
			require(t, h.Codec() == tc.want, "stored codec %v, want %v", h.Codec(), tc.want)
			require(t, h.BaseOffset == 3 && h.LastOffsetDelta == 9 && h.RecordCount == 10 &&
				h.ProducerID == 77 && h.ProducerEpoch == 2 && h.BaseSequence == 0 &&
				h.FirstTimestamp == want.FirstTimestamp && h.MaxTimestamp == want.MaxTimestamp &&
				h.PartitionLeaderEpoch == p.LeaderEpoch(), "stored header %+v", h)
			got, sentRecords := recordKeysAndValues(t, stored[0]), recordKeysAndValues(t, original)
			require(t, fmt.Sprint(got) == fmt.Sprint(sentRecords), "records changed:\n%v\nwant\n%v", got, sentRecords)
			if tc.sent == tc.want {
				record.SetBaseOffset(original, 3)
				record.SetPartitionLeaderEpoch(original, p.LeaderEpoch())
				require(t, bytes.Equal(stored[0], original), "a batch already in the topic's codec must be stored as sent")
			}
		})
	}
}

// TestPartitionCompressionTypeFollowsConfigChanges: the codec applies from
// the next append after an alter, and the level configs are read.
func TestPartitionCompressionTypeFollowsConfigChanges(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1})
	p := f.partition("t", 0)
	_, err := p.Append(f.keyedBatch(record.CodecNone, -1, -1, 50))
	noErr(t, err)
	f.apply(configRecord("t", config.CompressionType, "gzip"), configRecord("t", config.CompressionGzipLevel, "1"))
	p = f.partition("t", 0) // applies the new image
	_, err = p.Append(f.keyedBatch(record.CodecNone, -1, -1, 50))
	noErr(t, err)
	fast := readBatches(t, p, 50)[0]
	f.apply(configRecord("t", config.CompressionGzipLevel, "9"))
	p = f.partition("t", 0)
	_, err = p.Append(f.keyedBatch(record.CodecNone, -1, -1, 50))
	noErr(t, err)
	stored := readBatches(t, p, 0)
	require(t, len(stored) == 3, "%d batches", len(stored))
	h0, _ := record.ParseHeader(stored[0])
	best, _ := record.ParseHeader(stored[2])
	require(t, h0.Codec() == record.CodecNone && best.Codec() == record.CodecGzip, "codecs %v %v", h0.Codec(), best.Codec())
	require(t, len(stored[2]) < len(fast), "gzip level 9 (%d bytes) is not smaller than level 1 (%d bytes)", len(stored[2]), len(fast))
}

// TestPartitionCompressionTypeChecksMaxMessageBytes: the stored batch is
// held to max.message.bytes, as Kafka checks what it writes.
func TestPartitionCompressionTypeChecksMaxMessageBytes(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, map[string]string{config.CompressionType: "uncompressed", config.MaxMessageBytes: "1000"}, []int32{1})
	p := f.partition("t", 0)
	sent := f.keyedBatch(record.CodecGzip, -1, -1, 20)
	require(t, len(sent) < 1000, "test batch of %d bytes must fit compressed", len(sent))
	_, err := p.Append(sent)
	requireErrorIs(t, err, ErrMessageTooLarge)
	require(t, p.Offsets().LogEndOffset == 0, "LEO %d", p.Offsets().LogEndOffset)
}

// TestPartitionCompressionTypeLeaderOnly: the leader re-encodes, the
// follower stores the leader's bytes as they are, even when its own
// broker default names another codec.
func TestPartitionCompressionTypeLeaderOnly(t *testing.T) {
	c := newCluster(t)
	b1 := c.addBroker(1, brokerOpts{defaults: map[string]string{"compression.type": "zstd"}})
	b2 := c.addBroker(2, brokerOpts{defaults: map[string]string{"compression.type": "lz4"}})
	c.createTopic("t", 1, nil, []int32{1, 2})
	leader, follower := b1.leader(), b2.hosted()
	_, err := leader.Append(c.mk.keyedBatch(record.CodecNone, -1, -1, 20))
	noErr(t, err)
	c.requireConverged(leader, follower)
	for _, h := range batchHeaders(t, logBytes(t, follower, 0)) {
		require(t, h.Codec() == record.CodecZstd, "follower stored a %v batch, want the leader's zstd", h.Codec())
	}
}
