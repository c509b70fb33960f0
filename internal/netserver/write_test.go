package netserver

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"
)

// slowResponse writes a frame of size bytes in chunks with pauses, as a
// large fetch reaches a slow but steady reader, and says its size.
type slowResponse struct {
	size, chunk int
	pause       time.Duration
}

func (r slowResponse) Size() int64 { return int64(r.size) }
func (slowResponse) Release()      {}

func (r slowResponse) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, r.chunk)
	binary.BigEndian.PutUint32(buf, uint32(r.size-4))
	var written int64
	for written < int64(r.size) {
		n, err := w.Write(buf[:min(int64(r.chunk), int64(r.size)-written)])
		written += int64(n)
		if err != nil {
			return written, err
		}
		clear(buf[:4])
		time.Sleep(r.pause)
	}
	return written, nil
}

// TestNetserverWriteDeadlineGrowsWithResponseSize: a response that takes
// longer than WriteTimeout to write, but keeps moving, is not cut off when
// it says its size (the fetch path does).
func TestNetserverWriteDeadlineGrowsWithResponseSize(t *testing.T) {
	const size = 4 << 20 // 64 s of allowance at the minimum rate
	s := startServer(t, Config{WriteTimeout: 100 * time.Millisecond}, handlerFunc(
		func(context.Context, string, []byte) (Response, error) {
			return slowResponse{size: size, chunk: size / 8, pause: 60 * time.Millisecond}, nil
		}))
	c := dial(t, s)
	c.send(frame(payload(1, 0, 0)))
	got, err := c.readFrame()
	if err != nil || len(got) != size-4 {
		t.Fatalf("read %d bytes (%v), want %d: the slow write was cut off", len(got), err, size-4)
	}
}
