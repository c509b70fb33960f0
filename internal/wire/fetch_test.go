package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// fetchTestLog opens a log in a temporary directory on fsys holding n
// batches of 10 records of valueSize bytes each.
func fetchTestLog(tb testing.TB, fsys vfs.FS, n, valueSize int) *log.Log {
	tb.Helper()
	l, err := log.Open(fsys, filepath.Join(tb.TempDir(), "t-0"), log.Options{Config: log.DefaultConfig()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	for i := range n {
		recs := make([]record.Record, 10)
		for j := range recs {
			v := bytes.Repeat([]byte{byte('a' + (i+j)%26)}, valueSize)
			recs[j] = record.Record{Value: v, TimestampDelta: int64(j)}
		}
		b, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: -1, FirstTimestamp: 1_700_000_000_000}, recs)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := l.Append(b, log.AppendOptions{LeaderEpoch: 0}); err != nil {
			tb.Fatal(err)
		}
	}
	return l
}

func fetchTestSlice(tb testing.TB, l *log.Log, offset int64, maxBytes int) *log.Slice {
	tb.Helper()
	s, err := l.Read(offset, log.ReadOptions{MaxBytes: maxBytes, MaxOffset: log.NoMaxOffset, MinOneBatch: true})
	if err != nil {
		tb.Fatal(err)
	}
	return &s
}

func sliceBytes(tb testing.TB, s *log.Slice) []byte {
	tb.Helper()
	b, err := s.AppendTo([]byte{})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fetchTestResponse builds the same logical response both ways: ours, with
// slices of l, and kmsg's, with the slices' bytes.
func fetchTestResponse(tb testing.TB, l *log.Log, version int16) (*FetchResponse, *kmsg.FetchResponse) {
	tb.Helper()
	ours := &FetchResponse{Version: version, CorrelationID: 77, ThrottleMillis: 5, SessionID: 1234}
	theirs := kmsg.NewPtrFetchResponse()
	theirs.Version, theirs.ThrottleMillis, theirs.SessionID = version, 5, 1234
	type part struct {
		id       int32
		code     int16
		offset   int64 // -1: no records
		maxBytes int
		aborted  []FetchAbortedTransaction
	}
	topics := []struct {
		name  string
		parts []part
	}{
		{"alpha", []part{
			{id: 0, offset: 0, maxBytes: 3000},
			{id: 1, code: 1, offset: -1},
			{id: 2, offset: 20, maxBytes: 100000, aborted: []FetchAbortedTransaction{}},
		}},
		{"beta.with-a-longer_name", []part{
			{id: 7, offset: 5, maxBytes: 1, aborted: []FetchAbortedTransaction{{ProducerID: 9, FirstOffset: 3}, {ProducerID: 10, FirstOffset: 4}}},
		}},
		{"empty", nil},
	}
	for _, topic := range topics {
		ot := FetchTopic{Topic: topic.name}
		tt := kmsg.NewFetchResponseTopic()
		tt.Topic = topic.name
		for _, p := range topic.parts {
			op := FetchPartition{Partition: p.id, ErrorCode: p.code, HighWatermark: 100 + int64(p.id),
				LastStableOffset: 90, LogStartOffset: 2, AbortedTransactions: p.aborted, PreferredReadReplica: -1}
			tp := kmsg.NewFetchResponseTopicPartition()
			tp.Partition, tp.ErrorCode, tp.HighWatermark = p.id, p.code, 100+int64(p.id)
			tp.LastStableOffset, tp.LogStartOffset, tp.PreferredReadReplica = 90, 2, -1
			if p.aborted != nil {
				tp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
				for _, a := range p.aborted {
					tp.AbortedTransactions = append(tp.AbortedTransactions,
						kmsg.FetchResponseTopicPartitionAbortedTransaction{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset})
				}
			}
			tp.RecordBatches = []byte{}
			if p.offset >= 0 {
				op.Records = fetchTestSlice(tb, l, p.offset, p.maxBytes)
				tp.RecordBatches = sliceBytes(tb, op.Records)
			}
			ot.Partitions = append(ot.Partitions, op)
			tt.Partitions = append(tt.Partitions, tp)
		}
		ours.Topics = append(ours.Topics, ot)
		theirs.Topics = append(theirs.Topics, tt)
	}
	return ours, theirs
}

func TestFetchEncodeMatchesKmsgAtEveryVersion(t *testing.T) {
	for _, fsys := range []vfs.FS{vfs.OS(), vfs.NewMem()} {
		l := fetchTestLog(t, fsys, 40, 100)
		for v := int16(FetchMinVersion); v <= FetchMaxVersion; v++ {
			ours, theirs := fetchTestResponse(t, l, v)
			frame, err := EncodeFetchResponse(ours)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			n, err := frame.WriteTo(&got)
			frame.Release()
			if err != nil || n != int64(got.Len()) || n != frame.Size() {
				t.Fatalf("v%d: wrote %d (buffer %d, size %d): %v", v, n, got.Len(), frame.Size(), err)
			}
			want := AppendResponse(nil, 1, v, 77, theirs)
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("v%d: hand-framed response differs from kmsg's encoding\n got %x\nwant %x", v, got.Bytes(), want)
			}
			// And kmsg reads it back to the same response.
			back := kmsg.NewPtrFetchResponse()
			back.Version = v
			body := got.Bytes()[8:]
			if v >= fetchFlexibleVersion {
				body = body[1:]
			}
			if err := back.ReadFrom(body); err != nil {
				t.Fatalf("v%d: kmsg cannot read it: %v", v, err)
			}
			if len(back.Topics) != 3 || len(back.Topics[0].Partitions[0].RecordBatches) == 0 {
				t.Fatalf("v%d: decoded %+v", v, back)
			}
		}
	}
}

func TestFetchEncodeRejectsOtherVersions(t *testing.T) {
	l := fetchTestLog(t, vfs.NewMem(), 2, 10)
	for _, v := range []int16{3, 13} {
		r := &FetchResponse{Version: v, Topics: []FetchTopic{{Topic: "t", Partitions: []FetchPartition{{Records: fetchTestSlice(t, l, 0, 100)}}}}}
		if _, err := EncodeFetchResponse(r); err == nil {
			t.Fatalf("v%d encoded", v)
		}
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(tb testing.TB) (client, server *net.TCPConn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestFetchSendfileSendsTheSameBytes writes one frame over TCP by the
// sendfile path (a *net.TCPConn and OS files) and one by the copy path (the
// connection hidden behind an io.Writer), and compares both with the
// in-memory encoding.
func TestFetchSendfileSendsTheSameBytes(t *testing.T) {
	l := fetchTestLog(t, vfs.OS(), 200, 500)
	client, server := tcpPair(t)
	for _, tc := range []struct {
		name string
		w    io.Writer
	}{{"sendfile", server}, {"copy", struct{ io.Writer }{server}}} {
		ours, theirs := fetchTestResponse(t, l, 12)
		// One large partition, so sendfile moves more than a socket buffer.
		ours.Topics[0].Partitions[2].Records.Release()
		ours.Topics[0].Partitions[2].Records = fetchTestSlice(t, l, 20, 4<<20)
		theirs.Topics[0].Partitions[2].RecordBatches = sliceBytes(t, ours.Topics[0].Partitions[2].Records)
		want := AppendResponse(nil, 1, 12, 77, theirs)
		frame, err := EncodeFetchResponse(ours)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan []byte, 1)
		go func() {
			b := make([]byte, len(want))
			client.SetReadDeadline(time.Now().Add(20 * time.Second))
			n, _ := io.ReadFull(client, b)
			got <- b[:n]
		}()
		n, err := frame.WriteTo(tc.w)
		frame.Release()
		if err != nil || n != int64(len(want)) {
			t.Fatalf("%s: wrote %d of %d: %v", tc.name, n, len(want), err)
		}
		if b := <-got; !bytes.Equal(b, want) {
			t.Fatalf("%s: %d bytes received differ from the %d expected", tc.name, len(b), len(want))
		}
	}
}

// TestFetchWriteFailsOnAClosedConnection: an error mid-frame is reported,
// so the server closes the connection rather than send a torn frame.
func TestFetchWriteFailsOnAClosedConnection(t *testing.T) {
	l := fetchTestLog(t, vfs.OS(), 200, 500)
	client, server := tcpPair(t)
	client.Close()
	for range 2 { // the first write may be accepted before the reset
		frame, err := EncodeFetchResponse(&FetchResponse{Version: 12, Topics: []FetchTopic{{Topic: "t",
			Partitions: []FetchPartition{{Records: fetchTestSlice(t, l, 0, 8<<20)}}}}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = frame.WriteTo(server)
		frame.Release()
		if err != nil {
			return
		}
	}
	t.Fatal("writing to a closed connection succeeded")
}

func TestFetchReleaseIsIdempotent(t *testing.T) {
	l := fetchTestLog(t, vfs.NewMem(), 2, 10)
	frame, err := EncodeFetchResponse(&FetchResponse{Version: 4, Topics: []FetchTopic{{Topic: "t",
		Partitions: []FetchPartition{{Records: fetchTestSlice(t, l, 0, 100)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	frame.Release()
	frame.Release()
	if got := binary.BigEndian.Uint32(frame.head); int64(got) != frame.Size()-4 {
		t.Fatalf("size prefix %d, frame %d", got, frame.Size())
	}
}

// benchmarkFetch writes 1 MiB fetch responses of a real segment file over
// loopback TCP, as a consumer fetch does, by the given writer.
func benchmarkFetch(b *testing.B, sendfile bool) {
	const responseBytes = 1 << 20
	l := fetchTestLog(b, vfs.OS(), 1600, 1000) // ~16 MiB in batches of ~10 KiB
	client, server := tcpPair(b)
	var w io.Writer = server
	if !sendfile {
		w = struct{ io.Writer }{server}
	}
	drained := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, client)
		drained <- n
	}()
	end := l.LogEndOffset()
	var offset, total int64
	b.ResetTimer()
	for b.Loop() {
		s := fetchTestSlice(b, l, offset, responseBytes)
		frame, err := EncodeFetchResponse(&FetchResponse{Version: 12, Topics: []FetchTopic{{Topic: "bench",
			Partitions: []FetchPartition{{HighWatermark: end, LastStableOffset: end, PreferredReadReplica: -1, Records: s}}}}})
		if err != nil {
			b.Fatal(err)
		}
		n, err := frame.WriteTo(w)
		frame.Release()
		if err != nil {
			b.Fatal(err)
		}
		total += n
		offset += 1000 // about 1 MiB further on
		if offset >= end-1000 {
			offset = 0
		}
	}
	b.StopTimer()
	b.SetBytes(total / int64(max(b.N, 1)))
	server.CloseWrite()
	if n := <-drained; n != total {
		b.Fatalf("reader got %d of %d bytes", n, total)
	}
}

func BenchmarkFetchSendfile(b *testing.B) { benchmarkFetch(b, true) }
func BenchmarkFetchCopy(b *testing.B)     { benchmarkFetch(b, false) }

func ExampleEncodeFetchResponse() {
	frame, err := EncodeFetchResponse(&FetchResponse{Version: 12, CorrelationID: 1, Topics: []FetchTopic{{Topic: "t",
		Partitions: []FetchPartition{{HighWatermark: 0, PreferredReadReplica: -1}}}}})
	if err != nil {
		panic(err)
	}
	defer frame.Release()
	fmt.Println(frame.Size())
	// Output: 62
}
