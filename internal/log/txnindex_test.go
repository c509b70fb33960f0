package log

import (
	"encoding/binary"
	"slices"
	"testing"
)

// appendN appends n one-record batches and returns the offset of the last.
func appendN(t *testing.T, tl *testLog, n int) int64 {
	t.Helper()
	var last int64
	for i := range n {
		info, err := tl.Append(testBatch(t, "r", 1, 200, tl.clock.Now().UnixMilli()+int64(i)), AppendOptions{})
		noErr(t, err)
		last = info.LastOffset
	}
	return last
}

func TestLogTxnIndexLayout(t *testing.T) {
	b := appendAbortedTxn(nil, AbortedTxn{ProducerID: 7, FirstOffset: 10, LastOffset: 20, LastStableOffset: 21})
	require(t, len(b) == txnIndexEntrySize, "entry is %d bytes, Kafka's are 34", len(b))
	require(t, binary.BigEndian.Uint16(b) == 0 && binary.BigEndian.Uint64(b[2:]) == 7 &&
		binary.BigEndian.Uint64(b[10:]) == 10 && binary.BigEndian.Uint64(b[18:]) == 20 && binary.BigEndian.Uint64(b[26:]) == 21,
		"layout %x", b)
	got := decodeTxnIndex(append(b, b[:10]...), 0, 100)
	require(t, len(got) == 1 && got[0].LastOffset == 20, "torn tail: %+v", got)
	require(t, len(decodeTxnIndex(b, 0, 20)) == 0, "a marker past the segment end is kept")
}

func TestLogTxnIndexAcrossSegmentsRestartTruncation(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	// Three aborted transactions whose markers land in different segments.
	var want []AbortedTxn
	for i := range 3 {
		first := tl.LogEndOffset()
		marker := appendN(t, tl, 15)
		txn := AbortedTxn{ProducerID: int64(i), FirstOffset: first, LastOffset: marker, LastStableOffset: marker + 1}
		noErr(t, tl.AppendAbortedTxn(txn))
		noErr(t, tl.AppendAbortedTxn(txn)) // replayed twice: still one entry
		want = append(want, txn)
	}
	require(t, tl.NumSegments() > 2, "want several segments, have %d", tl.NumSegments())
	require(t, slices.Equal(tl.AbortedTxns(0, tl.LogEndOffset()), want), "all: %+v", tl.AbortedTxns(0, tl.LogEndOffset()))
	// A range inside the second transaction sees it (its marker is later)
	// and stops at its entry: its last stable offset passes the range.
	mid := want[1].FirstOffset + 2
	require(t, slices.Equal(tl.AbortedTxns(mid, mid+1), want[1:2]), "mid: %+v", tl.AbortedTxns(mid, mid+1))
	require(t, len(tl.AbortedTxns(want[2].LastOffset+1, tl.LogEndOffset())) == 0, "past every marker")

	noErr(t, tl.Close())
	tl.reopen(t, Options{})
	require(t, slices.Equal(tl.AbortedTxns(0, tl.LogEndOffset()), want), "after restart: %+v", tl.AbortedTxns(0, tl.LogEndOffset()))

	noErr(t, tl.Truncate(want[2].LastOffset))
	require(t, slices.Equal(tl.AbortedTxns(0, tl.LogEndOffset()), want[:2]), "after truncation: %+v", tl.AbortedTxns(0, tl.LogEndOffset()))
	noErr(t, tl.DropAbortedTxnsFrom(want[1].LastOffset))
	noErr(t, tl.Close())
	tl.reopen(t, Options{})
	require(t, slices.Equal(tl.AbortedTxns(0, tl.LogEndOffset()), want[:1]), "dropped, restarted: %+v", tl.AbortedTxns(0, tl.LogEndOffset()))

	// Retention takes the index with its segment.
	_, err := tl.DeleteRecordsBefore(want[0].LastOffset + 1)
	noErr(t, err)
	require(t, tl.segments[0].baseOffset > want[0].LastOffset, "the marker's segment was kept (first base %d)", tl.segments[0].baseOffset)
	require(t, len(tl.AbortedTxns(0, tl.LogEndOffset())) == 0, "entry outlived its segment")
	for _, name := range mustList(tl) {
		_, ok := parseSegmentFileName(name, txnIndexSuffix)
		require(t, !ok, "txnindex file left behind: %s", name)
	}
}

// TestLogTxnIndexMarkersIndexedOutOfOrder: two aborts whose markers share
// a write round may be indexed later-marker first, and the earlier
// marker's last stable offset then comes from an open set that no longer
// holds the later one (it passes that transaction's start). A
// read_committed range up to the last stable offset must still list
// both; it used to stop at the earlier marker's entry and leave the later
// transaction's records to be read as committed.
func TestLogTxnIndexMarkersIndexedOutOfOrder(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	appendN(t, tl, 20) // offsets 0-19: x at 0-2, y at 3-8, z (open) from 9
	x := AbortedTxn{ProducerID: 3, FirstOffset: 0, LastOffset: 17, LastStableOffset: 9}
	y := AbortedTxn{ProducerID: 0, FirstOffset: 3, LastOffset: 18, LastStableOffset: 0}
	noErr(t, tl.AppendAbortedTxn(y)) // the later marker's abort is indexed first
	noErr(t, tl.AppendAbortedTxn(x)) // then x's, worked out without y open
	got := tl.AbortedTxns(0, 9)
	require(t, len(got) == 2 && got[0].ProducerID == 3 && got[1].ProducerID == 0,
		"aborted transactions of [0, 9): %+v, want x and y", got)
	require(t, got[0].LastStableOffset == 3, "x's last stable offset %d, want y's first offset 3", got[0].LastStableOffset)
}

func mustList(tl *testLog) []string {
	names, _ := tl.fs.List(tl.dir)
	return names
}

// FuzzTxnIndexDecode: whatever a .txnindex file holds, decoding keeps a
// prefix of well-formed entries inside the segment and never panics.
func FuzzTxnIndexDecode(f *testing.F) {
	f.Add(appendAbortedTxn(nil, AbortedTxn{ProducerID: 1, FirstOffset: 3, LastOffset: 7, LastStableOffset: 8}), int64(0), int64(10))
	f.Add([]byte{0, 1, 2}, int64(5), int64(6))
	f.Fuzz(func(t *testing.T, data []byte, base, next int64) {
		txns := decodeTxnIndex(data, base, next)
		if len(txns)*txnIndexEntrySize > len(data) {
			t.Fatalf("%d entries from %d bytes", len(txns), len(data))
		}
		for i, txn := range txns {
			if txn.LastOffset < base || txn.LastOffset >= next || txn.FirstOffset > txn.LastOffset || txn.ProducerID < 0 {
				t.Fatalf("entry %d kept: %+v in [%d, %d)", i, txn, base, next)
			}
			enc := appendAbortedTxn(nil, txn)
			if string(enc) != string(data[i*txnIndexEntrySize:(i+1)*txnIndexEntrySize]) {
				t.Fatalf("entry %d does not re-encode to its bytes", i)
			}
		}
	})
}
