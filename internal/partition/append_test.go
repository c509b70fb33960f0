package partition

import (
	"math"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/record"
)

func TestPartitionAppendValidation(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, map[string]string{
		config.MaxMessageBytes: "300", config.MessageTimestampBeforeMaxMs: "1000",
	}, []int32{1})
	p := f.partition("t", 0)
	now := f.nowMs()

	oldMagic := f.batch(plain(1))
	oldMagic[16] = 1
	controlBatch, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: 5, Control: true, FirstTimestamp: now},
		[]record.Record{{Value: []byte{0, 0, 0, 0}}})
	noErr(t, err)
	badCRC := f.batch(plain(1))
	badCRC[len(badCRC)-1] ^= 0xff
	two := append(f.batch(idem(3, 0, 0, 1)), f.batch(idem(3, 0, 1, 1))...)

	for _, tc := range []struct {
		name    string
		records []byte
		want    error
	}{
		{"magic 1", oldMagic, record.ErrUnsupportedMagic},
		{"truncated", f.batch(plain(1))[:40], record.ErrTruncated},
		{"too large", f.batch(batchSpec{records: 1, valueSize: 400, producerID: -1}), ErrMessageTooLarge},
		{"transactional without a producer id", f.batch(batchSpec{records: 1, producerID: -1, transactional: true}), record.ErrInvalidRecord},
		{"control", controlBatch, record.ErrInvalidRecord},
		{"too old", f.batch(batchSpec{records: 1, producerID: -1, timestampMs: now - 1001}), ErrInvalidTimestamp},
		{"too new", f.batch(batchSpec{records: 1, producerID: -1, timestampMs: now + 3_600_001}), ErrInvalidTimestamp},
		{"very old", f.batch(batchSpec{records: 1, producerID: -1, timestampMs: math.MinInt64 + 5}), ErrInvalidTimestamp},
		{"two idempotent batches", two, record.ErrInvalidRecord},
		{"bad crc", badCRC, log.ErrInvalidRecords},
		{"empty", nil, record.ErrInvalidRecord},
	} {
		_, err := p.Append(tc.records)
		if err == nil {
			t.Fatalf("%s: appended", tc.name)
		}
		requireErrorIs(t, err, tc.want)
	}
	require(t, p.Offsets().LogEndOffset == 0, "refused batches were written: LEO %d", p.Offsets().LogEndOffset)

	// In range, including the bounds and "no timestamp".
	for _, ts := range []int64{now - 1000, now + 3_600_000, -1} {
		_, err := p.Append(f.batch(batchSpec{records: 1, producerID: -1, timestampMs: ts}))
		noErr(t, err)
	}
	// Several plain batches in one append are fine.
	res, err := p.Append(append(f.batch(plain(2)), f.batch(plain(3))...))
	noErr(t, err)
	require(t, res.BaseOffset == 3 && res.LastOffset == 7 && res.LogAppendTimeMs == -1, "result %+v", res)

	// The deprecated difference bound narrows both sides.
	f.apply(configRecord("t", config.MessageTimestampDifferenceMaxMs, "100"))
	_, err = f.partition("t", 0).Append(f.batch(batchSpec{records: 1, producerID: -1, timestampMs: now + 101}))
	requireErrorIs(t, err, ErrInvalidTimestamp)
	_, err = p.Append(f.batch(batchSpec{records: 1, producerID: -1, timestampMs: now - 100}))
	noErr(t, err)
}

func TestPartitionLogAppendTime(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, map[string]string{config.MessageTimestampType: config.TimestampLogAppendTime}, []int32{1})
	p := f.partition("t", 0)
	res, err := p.Append(f.batch(batchSpec{records: 2, producerID: -1, timestampMs: 5})) // ancient: not checked
	noErr(t, err)
	require(t, res.LogAppendTimeMs == f.nowMs(), "log append time %d, want %d", res.LogAppendTimeMs, f.nowMs())
	hs := readAll(t, p, 0)
	require(t, len(hs) == 1 && hs[0].MaxTimestamp == f.nowMs() && hs[0].TimestampType() == record.LogAppendTime, "batch %+v", hs)
	off, ts, found, err := p.MaxTimestamp()
	noErr(t, err)
	require(t, found && ts == f.nowMs() && off == 0, "max timestamp %d at %d (%v)", ts, off, found)
}

func TestPartitionIdempotentProducer(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1})
	p := f.partition("t", 0)
	appendOK := func(s batchSpec, base, last int64) {
		t.Helper()
		res, err := p.Append(f.batch(s))
		noErr(t, err)
		require(t, !res.Duplicate && res.BaseOffset == base && res.LastOffset == last, "%+v: result %+v, want %d-%d", s, res, base, last)
	}
	appendDup := func(s batchSpec, base, last int64) {
		t.Helper()
		leo := p.Offsets().LogEndOffset
		res, err := p.Append(f.batch(s))
		noErr(t, err)
		require(t, res.Duplicate && res.BaseOffset == base && res.LastOffset == last, "%+v: result %+v, want duplicate %d-%d", s, res, base, last)
		require(t, p.Offsets().LogEndOffset == leo, "a duplicate was written")
	}
	appendErr := func(s batchSpec, want error) {
		t.Helper()
		_, err := p.Append(f.batch(s))
		requireErrorIs(t, err, want)
	}

	appendOK(idem(7, 0, 0, 3), 0, 2)
	appendOK(idem(7, 0, 3, 2), 3, 4)
	appendDup(idem(7, 0, 0, 3), 0, 2)
	appendDup(idem(7, 0, 3, 2), 3, 4)
	appendErr(idem(7, 0, 6, 1), ErrOutOfOrderSequence) // gap: 5 expected
	appendErr(idem(7, 0, 4, 1), ErrOutOfOrderSequence) // overlaps, not a retry
	appendOK(plain(1), 5, 5)                           // others interleave freely
	appendOK(idem(7, 0, 5, 1), 6, 6)

	// Only the last 5 batches are remembered.
	for i := range int32(5) {
		appendOK(idem(7, 0, 6+i, 1), 7+int64(i), 7+int64(i))
	}
	appendErr(idem(7, 0, 5, 1), ErrOutOfOrderSequence)
	appendDup(idem(7, 0, 6, 1), 7, 7)

	// A new epoch must start at 0 and fences the old one.
	appendErr(idem(7, 1, 11, 1), ErrOutOfOrderSequence)
	appendOK(idem(7, 1, 0, 1), 12, 12)
	appendErr(idem(7, 0, 11, 1), ErrInvalidProducerEpoch)
	appendErr(idem(7, 0, 10, 1), ErrInvalidProducerEpoch) // not even a duplicate answer
	appendDup(idem(7, 1, 0, 1), 12, 12)

	// An unknown producer is accepted at any sequence.
	appendOK(idem(8, 3, 42, 2), 13, 14)
	appendOK(idem(8, 3, 44, 1), 15, 15)

	// Sequences wrap from MaxInt32 to 0.
	appendOK(idem(9, 0, math.MaxInt32-1, 2), 16, 17)
	appendOK(idem(9, 0, 0, 1), 18, 18)

	// A refused first batch leaves no state behind.
	_, err := p.Append(f.batch(batchSpec{records: 1, producerID: 10, timestampMs: f.nowMs() + 7_200_000}))
	requireErrorIs(t, err, ErrInvalidTimestamp)

	states := p.Producers()
	require(t, len(states) == 3, "producers %+v", states)
	want := []ProducerState{
		{ProducerID: 7, ProducerEpoch: 1, LastSequence: 0, LastTimestampMs: f.nowMs(), CoordinatorEpoch: -1, CurrentTxnStartOffset: -1},
		{ProducerID: 8, ProducerEpoch: 3, LastSequence: 44, LastTimestampMs: f.nowMs(), CoordinatorEpoch: -1, CurrentTxnStartOffset: -1},
		{ProducerID: 9, ProducerEpoch: 0, LastSequence: 0, LastTimestampMs: f.nowMs(), CoordinatorEpoch: -1, CurrentTxnStartOffset: -1},
	}
	for i := range want {
		require(t, states[i] == want[i], "producer %d: %+v, want %+v", i, states[i], want[i])
	}
	require(t, p.Offsets().HighWatermark == 19, "HW %d", p.Offsets().HighWatermark)
}

func TestPartitionProducerExpiryAndBound(t *testing.T) {
	f := newFixture(t)
	f.mgr.opts.MaxProducersPerPartition = 3
	f.mgr.opts.ProducerIDExpirationMs = 60_000
	f.createTopic("t", 1, nil, []int32{1})
	p := f.partition("t", 0)
	for pid := range int64(3) {
		_, err := p.Append(f.batch(idem(pid, 0, 0, 1)))
		noErr(t, err)
		f.clock.Advance(time.Second)
	}
	// A fourth producer evicts the least recently active one (0).
	_, err := p.Append(f.batch(idem(3, 0, 0, 1)))
	noErr(t, err)
	require(t, p.producers.len() == 3, "%d producers kept", p.producers.len())
	res, err := p.Append(f.batch(idem(0, 0, 0, 1)))
	noErr(t, err)
	require(t, !res.Duplicate, "an evicted producer's retry was still recognised")

	// Silence past producer.id.expiration.ms forgets a producer.
	f.clock.Advance(61 * time.Second)
	_, err = p.Append(f.batch(idem(4, 0, 0, 1)))
	noErr(t, err)
	require(t, p.producers.len() == 1, "expired producers kept: %d", p.producers.len())
	require(t, len(p.Producers()) == 1, "producers %+v", p.Producers())
}

func TestPartitionHighWatermarkReadsAndOffsets(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1})
	p := f.partition("t", 0)
	ch := make(chan struct{}, 1)
	cancel := p.Watch(ch)
	requireQuiet(t, ch)
	for i := range 4 {
		_, err := p.Append(f.batch(batchSpec{records: 2, producerID: -1, timestampMs: f.nowMs() + int64(i)*10}))
		noErr(t, err)
		requireSignalled(t, ch)
	}
	cancel()
	_, err := p.Append(f.batch(plain(1)))
	noErr(t, err)
	requireQuiet(t, ch)

	require(t, p.Offsets() == Offsets{LogStartOffset: 0, HighWatermark: 9, LogEndOffset: 9, LastStableOffset: 9}, "offsets %+v", p.Offsets())
	hs := readAll(t, p, 4)
	require(t, len(hs) == 3 && hs[0].BaseOffset == 4, "read from 4: %d batches", len(hs))
	res, err := p.Read(9, ReadOptions{MaxBytes: 100, CurrentLeaderEpoch: 0})
	noErr(t, err)
	require(t, res.Records.Size == 0 && res.HighWatermark == 9 && res.LastStableOffset == 9 && res.LogEndOffset == 9, "read at HW: %+v", res)
	res.Records.Release()
	_, err = p.Read(10, ReadOptions{CurrentLeaderEpoch: -1})
	requireErrorIs(t, err, log.ErrOffsetOutOfRange)

	off, ts, found, err := p.OffsetForTimestamp(f.nowMs() + 15)
	noErr(t, err)
	require(t, found && off == 4 && ts == f.nowMs()+20, "offset for timestamp: %d %d %v", off, ts, found)
	_, _, found, err = p.OffsetForTimestamp(f.nowMs() + 1000)
	noErr(t, err)
	require(t, !found, "found a record newer than any")

	// DeleteRecords: bounded by the high watermark, -1 means it.
	low, err := p.DeleteRecordsBefore(3)
	noErr(t, err)
	require(t, low == 3 && p.Offsets().LogStartOffset == 3, "low watermark %d", low)
	_, err = p.DeleteRecordsBefore(10)
	requireErrorIs(t, err, log.ErrOffsetOutOfRange)
	low, err = p.DeleteRecordsBefore(-1)
	noErr(t, err)
	require(t, low == 9, "delete before HW: %d", low)
	_, err = p.Read(2, ReadOptions{CurrentLeaderEpoch: -1})
	requireErrorIs(t, err, log.ErrOffsetOutOfRange)
}
