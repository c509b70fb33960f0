package netserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// longPollHandler answers every request after a 1 ms wait on a timer, as
// a fetch that long-polls an idle partition answers at its max wait.
type longPollHandler struct{ resp Response }

func (h longPollHandler) Serve(ctx context.Context, _ string, _ []byte) (Response, error) {
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return h.resp, nil
}

// inlineLongPollHandler lets the reader serve the long polls (Inliner).
type inlineLongPollHandler struct{ longPollHandler }

func (inlineLongPollHandler) CanInline(context.Context, []byte) bool { return true }

// BenchmarkNetserverLongPoll runs 10 clients that each send a request and
// wait for its answer, over and over, against a handler that answers
// after 1 ms: idle consumers long-polling, in miniature. It reports the
// process's CPU time per round trip (cpu-us/op; the clients' share, the
// same in both cases, included), with the long polls served by the
// connection's processor goroutine or by its reader (inline). Run with
//
//	go test -run '^$' -bench LongPoll -count 3 ./internal/netserver/
func BenchmarkNetserverLongPoll(b *testing.B) {
	resp := staticResponse(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 4), 7))
	var respIface Response = &resp
	for _, inline := range []bool{false, true} {
		b.Run(fmt.Sprintf("inline=%v", inline), func(b *testing.B) {
			var h Handler = longPollHandler{respIface}
			if inline {
				h = inlineLongPollHandler{longPollHandler{respIface}}
			}
			benchmarkLongPoll(b, startServer(b, Config{}, h), len(resp))
		})
	}
}

func benchmarkLongPoll(b *testing.B, s *Server, respSize int) {
	const clients = 10
	conns := make([]net.Conn, clients)
	for i := range conns {
		nc, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		conns[i] = nc
	}
	req := frame(payload(7, opEcho, 64))
	var next sync.WaitGroup
	var mu sync.Mutex
	left := b.N
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		left--
		return left >= 0
	}
	before := cpuTime(b)
	b.ResetTimer()
	for _, nc := range conns {
		next.Add(1)
		go func() {
			defer next.Done()
			got := make([]byte, respSize)
			for take() {
				if _, err := nc.Write(req); err != nil {
					b.Error(err)
					return
				}
				if _, err := io.ReadFull(nc, got); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	next.Wait()
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-before).Microseconds())/float64(b.N), "cpu-us/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
