package peer

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/partition"
)

// fakeLeader answers Fetch requests on loopback with a fixed session id and
// hands each decoded request to the test.
func fakeLeader(t *testing.T, sessionID int32) (addr string, requests <-chan *kmsg.FetchRequest) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan *kmsg.FetchRequest, 16)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			var size [4]byte
			if _, err := io.ReadFull(conn, size[:]); err != nil {
				return
			}
			frame := make([]byte, binary.BigEndian.Uint32(size[:]))
			if _, err := io.ReadFull(conn, frame); err != nil {
				return
			}
			version := int16(binary.BigEndian.Uint16(frame[2:]))
			correlation := frame[4:8]
			clientIDLen := int(binary.BigEndian.Uint16(frame[8:]))
			body := frame[10+clientIDLen:]
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(version)
			if req.IsFlexible() {
				body = body[1:]
			}
			if err := req.ReadFrom(body); err != nil {
				t.Errorf("decode fetch: %v", err)
				return
			}
			out <- req
			resp := req.ResponseKind().(*kmsg.FetchResponse)
			resp.SessionID = sessionID
			b := append([]byte{0, 0, 0, 0}, correlation...)
			if resp.IsFlexible() {
				b = append(b, 0) // response header v1: no tagged fields
			}
			b = resp.AppendTo(b)
			binary.BigEndian.PutUint32(b, uint32(len(b)-4))
			if _, err := conn.Write(b); err != nil {
				return
			}
		}
	}()
	return ln.Addr().String(), out
}

func sentPartitions(req *kmsg.FetchRequest) []string {
	var out []string
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			out = append(out, t.Topic+"/"+string(rune('0'+p.Partition)))
		}
	}
	return out
}

// TestPeerFetchSession: the first fetch is full and asks for a session;
// later ones carry the session's next epoch, only the partitions whose
// position changed, and the partitions no longer followed as forgotten.
func TestPeerFetchSession(t *testing.T) {
	addr, requests := fakeLeader(t, 7)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialReplica(ctx, addr, Options{ClientID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := partition.ReplicaFetchPartition{Topic: "a", Partition: 0, FetchOffset: 10, CurrentLeaderEpoch: 1, MaxBytes: 1 << 20}
	b := partition.ReplicaFetchPartition{Topic: "b", Partition: 1, FetchOffset: 5, CurrentLeaderEpoch: 1, MaxBytes: 1 << 20}
	a2 := a
	a2.FetchOffset = 12
	rounds := []struct {
		parts     []partition.ReplicaFetchPartition
		id, epoch int32
		sent      []string
		forgotten int
	}{
		{[]partition.ReplicaFetchPartition{b, a}, 0, 0, []string{"a/0", "b/1"}, 0},
		{[]partition.ReplicaFetchPartition{a, b}, 7, 1, nil, 0},
		{[]partition.ReplicaFetchPartition{a2, b}, 7, 2, []string{"a/0"}, 0},
		{[]partition.ReplicaFetchPartition{a2}, 7, 3, nil, 1},
	}
	for i, r := range rounds {
		if _, err := c.Fetch(ctx, partition.ReplicaFetchRequest{ReplicaID: 2, MaxWaitMs: 10, MinBytes: 1, MaxBytes: 1 << 20, Partitions: r.parts}); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		req := <-requests
		if req.ReplicaID != 2 || req.SessionID != r.id || req.SessionEpoch != r.epoch {
			t.Errorf("round %d: replica %d session %d epoch %d, want 2, %d, %d", i, req.ReplicaID, req.SessionID, req.SessionEpoch, r.id, r.epoch)
		}
		if got := sentPartitions(req); !slices.Equal(got, r.sent) {
			t.Errorf("round %d: sent %v, want %v", i, got, r.sent)
		}
		if len(req.ForgottenTopics) != r.forgotten {
			t.Errorf("round %d: forgotten %+v, want %d topic(s)", i, req.ForgottenTopics, r.forgotten)
		}
	}
}
