package netserver

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
)

// staticResponse is a preallocated response frame, so the benchmark counts
// the server's allocations, not the handler's.
type staticResponse []byte

func (r staticResponse) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(r)
	return int64(n), err
}

func (staticResponse) Release() {}

// BenchmarkNetserverRoundTrip measures one small request and its response
// over loopback, one at a time on one connection: the latency floor the
// network layer adds to every request. Run with
//
//	go test -run '^$' -bench RoundTrip -benchmem ./internal/netserver/
func BenchmarkNetserverRoundTrip(b *testing.B) {
	resp := staticResponse(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 4), 7))
	var respIface Response = &resp
	h := handlerFunc(func(context.Context, string, []byte) (Response, error) { return respIface, nil })
	s := startServer(b, Config{}, h)
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	req := frame(payload(7, opEcho, 64))
	got := make([]byte, len(resp))
	b.ReportAllocs()
	b.SetBytes(int64(len(req) + len(resp)))
	for b.Loop() {
		if _, err := nc.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(nc, got); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := s.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkNetserverPipelined keeps 16 small requests in flight on one
// connection, as a pipelining producer does.
func BenchmarkNetserverPipelined(b *testing.B) {
	const depth = 16
	resp := staticResponse(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 4), 7))
	var respIface Response = &resp
	h := handlerFunc(func(context.Context, string, []byte) (Response, error) { return respIface, nil })
	s := startServer(b, Config{MaxInFlightPerConn: depth}, h)
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	var reqs []byte
	for range depth {
		reqs = append(reqs, frame(payload(7, opEcho, 64))...)
	}
	got := make([]byte, depth*len(resp))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += depth {
		if _, err := nc.Write(reqs); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(nc, got); err != nil {
			b.Fatal(err)
		}
	}
}
