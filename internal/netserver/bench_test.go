package netserver

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
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

// idleConnections is how many connections BenchmarkNetserverIdleConnections
// holds open: both ends are in this process, so it needs twice as many
// descriptors, under the 20,000 a test process usually may have.
const idleConnections = 4000

// BenchmarkNetserverIdleConnections opens idleConnections connections that
// each do one request and then idle, and reports what the server holds for
// each once their processors have exited: goroutines, stack bytes and live
// heap bytes, after a GC (which frees the stacks of exited goroutines and
// halves those using under a quarter of theirs; the runtime forces one at
// least every two minutes). The heap figure includes the client's end of
// each loopback connection. bench/connections.sh measures the whole broker
// process's resident memory. Run with
//
//	go test -run '^$' -bench IdleConnections -benchtime 1x -count 3 ./internal/netserver/
func BenchmarkNetserverIdleConnections(b *testing.B) {
	h := newTestHandler()
	s := startServer(b, Config{MaxConnections: 2 * idleConnections}, h)
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		goroutines := runtime.NumGoroutine()
		clients := make([]*testClient, idleConnections)
		for i := range clients {
			clients[i] = dial(b, s)
			clients[i].roundTrip(uint32(i))
		}
		// Processors exit processorLinger after their last answer.
		eventually(b, "processors done", func() bool {
			return runtime.NumGoroutine()-goroutines <= idleConnections
		})
		goroutines = runtime.NumGoroutine() - goroutines
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(goroutines)/idleConnections, "goroutines/conn")
		b.ReportMetric(float64(int64(after.StackInuse)-int64(before.StackInuse))/idleConnections, "stack-B/conn")
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/idleConnections, "heap-B/conn")
		for _, c := range clients {
			c.nc.Close()
		}
		eventually(b, "connections closed", func() bool { return s.NumConnections() == 0 })
	}
}
