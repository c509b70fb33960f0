package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/partition"
)

// fakeCoordinator answers ApiVersions (advertising AddPartitionsToTxn up
// to maxVerify, none when negative) and AddPartitionsToTxn with code for
// every partition.
func fakeCoordinator(t *testing.T, maxVerify int16, code int16) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveFakeCoordinator(t, conn, maxVerify, code)
		}
	}()
	return ln.Addr().String()
}

func serveFakeCoordinator(t *testing.T, conn net.Conn, maxVerify, code int16) {
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
		req := kmsg.RequestForKey(int16(binary.BigEndian.Uint16(frame)))
		req.SetVersion(int16(binary.BigEndian.Uint16(frame[2:])))
		body := frame[10+int(binary.BigEndian.Uint16(frame[8:])):]
		if req.IsFlexible() {
			body = body[1:]
		}
		if err := req.ReadFrom(body); err != nil {
			t.Errorf("decode %T: %v", req, err)
			return
		}
		var resp kmsg.Response
		switch r := req.(type) {
		case *kmsg.ApiVersionsRequest:
			out := r.ResponseKind().(*kmsg.ApiVersionsResponse)
			if maxVerify >= 0 {
				out.ApiKeys = append(out.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: 24, MaxVersion: maxVerify})
			}
			resp = out
		case *kmsg.AddPartitionsToTxnRequest:
			out := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
			for _, txn := range r.Transactions {
				if !txn.VerifyOnly {
					t.Errorf("verification sent without verify_only")
				}
				rt := kmsg.NewAddPartitionsToTxnResponseTransaction()
				rt.TransactionalID = txn.TransactionalID
				for _, topic := range txn.Topics {
					tt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
					tt.Topic = topic.Topic
					for _, p := range topic.Partitions {
						tt.Partitions = append(tt.Partitions, kmsg.AddPartitionsToTxnResponseTransactionTopicPartition{Partition: p, ErrorCode: code})
					}
					rt.Topics = append(rt.Topics, tt)
				}
				out.Transactions = append(out.Transactions, rt)
			}
			resp = out
		default:
			return
		}
		b := append([]byte{0, 0, 0, 0}, frame[4:8]...)
		if resp.IsFlexible() && resp.Key() != 18 {
			b = append(b, 0)
		}
		b = resp.AppendTo(b)
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		if _, err := conn.Write(b); err != nil {
			return
		}
	}
}

func TestPeerTxnVerifier(t *testing.T) {
	for _, tc := range []struct {
		name      string
		maxVerify int16
		code      int16
		want      error
	}{
		{"verified", 5, 0, nil},
		{"not in the transaction", 5, kerr.InvalidTxnState.Code, partition.ErrInvalidTxnState},
		{"fenced", 4, kerr.ProducerFenced.Code, partition.ErrInvalidProducerEpoch},
		{"coordinator moving", 5, kerr.NotCoordinator.Code, partition.ErrNotEnoughReplicas},
		{"verify answered unsupported", 5, kerr.UnsupportedVersion.Code, partition.ErrTxnVerificationUnsupported},
		{"only old versions", 3, 0, partition.ErrTxnVerificationUnsupported},
		{"no AddPartitionsToTxn", -1, 0, partition.ErrTxnVerificationUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeCoordinator(t, tc.maxVerify, tc.code)
			v := &TxnVerifier{Locate: func(string) (string, error) { return addr, nil }}
			defer v.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for range 2 { // the second call reuses the connection
				err := v.VerifyTxnPartition(ctx, "app", 7, 1, "t", 0)
				if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
			}
		})
	}
	v := &TxnVerifier{Locate: func(string) (string, error) { return "", errors.New("no __transaction_state") }}
	if err := v.VerifyTxnPartition(context.Background(), "app", 7, 1, "t", 0); !errors.Is(err, partition.ErrNotEnoughReplicas) {
		t.Fatalf("no coordinator: %v", err)
	}
}
