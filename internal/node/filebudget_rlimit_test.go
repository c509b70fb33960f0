//go:build linux

package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/netserver"
	"github.com/sluicelog/sluice/internal/vfs"
)

// echoFrame answers every request with its own bytes.
type echoFrame struct{}

type frameResponse []byte

func (r frameResponse) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(r)
	return int64(n), err
}

func (frameResponse) Release() {}

func (echoFrame) Serve(_ context.Context, _ string, frame []byte) (netserver.Response, error) {
	return frameResponse(append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)), nil
}

// TestNodeFailedAcceptUnderRlimit runs, in a child process, a file cache
// holding 48 idle segment files, a listener wired to the segment file
// budget as the node wires them, and a descriptor limit that the rest of
// the process has used up: a client's connection waits in the backlog
// while every accept fails with EMFILE. The failed accept must make the
// cache close idle files, so the client is served. Before, the listener
// retried until a client left, and this one never got in.
func TestNodeFailedAcceptUnderRlimit(t *testing.T) {
	if os.Getenv("SLUICE_RLIMIT_CHILD") == "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestNodeFailedAcceptUnderRlimit$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "SLUICE_RLIMIT_CHILD=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child process: %v\n%s", err, out)
		}
		return
	}
	logs, err := log.OpenManager(log.ManagerOptions{FS: vfs.OS(), Dir: t.TempDir(), Config: log.DefaultConfig(), Logger: quietLogger,
		MaxOpenSealedSegments: 8, MaxOpenActiveSegments: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	for i := range 48 { // each opens its active segment's file
		if _, err := logs.GetOrCreate(log.TopicPartition{Topic: "t", Partition: int32(i)}, log.DefaultConfig()); err != nil {
			t.Fatal(err)
		}
	}
	if open := logs.OpenActiveFiles(); open != 48 {
		t.Fatalf("%d active files open, want 48", open)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	changed, shortage := make(chan struct{}, 1), make(chan struct{}, 1)
	signal := func(ch chan struct{}) func() {
		return func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	var failedAccepts atomic.Int64
	server := netserver.New(ln, netserver.Config{Logger: quietLogger, ConnectionsChanged: signal(changed), DescriptorShortage: func() {
		failedAccepts.Add(1)
		signal(shortage)()
	}}, echoFrame{})
	defer server.Close()

	// The rest of the process takes every descriptor left, but one for
	// the client's socket.
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	limit := len(fds) + 16
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: uint64(limit), Max: uint64(limit)}); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	var others []*os.File
	defer func() {
		for _, f := range others {
			f.Close()
		}
	}()
	for {
		f, err := os.Open(os.DevNull)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		others = append(others, f)
	}
	others[len(others)-1].Close()
	others = others[:len(others)-1]

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fitSegmentFiles(ctx, limit, changed, shortage, time.Minute, server.NumConnections, logs)
	}()
	defer func() { cancel(); <-done }()

	c, err := net.DialTimeout("tcp", server.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	request := []byte("ping")
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(request))), request...)); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 8)
	if _, err := io.ReadFull(c, reply); err != nil {
		t.Fatalf("no response with %d idle segment files open and the accept out of descriptors: %v", logs.OpenActiveFiles(), err)
	}
	if string(reply[4:]) != "ping" {
		t.Fatalf("response %q", reply)
	}
	if failedAccepts.Load() == 0 {
		t.Fatal("no accept failed: the test tests nothing")
	}
	if logs.OpenActiveFiles() >= 48 {
		t.Fatalf("%d active files still open", logs.OpenActiveFiles())
	}
	fmt.Fprintf(os.Stderr, "served after the cache closed idle files: %d active files open\n", logs.OpenActiveFiles())
}
