package raft

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// replyRecorder is a Transport that keeps the replies sent.
type replyRecorder struct {
	mu      sync.Mutex
	replies []ProposalReply
}

func (r *replyRecorder) Send([]*raftpb.Message)                 {}
func (r *replyRecorder) SendProposal(uint64, ForwardedProposal) {}
func (r *replyRecorder) Close() error                           { return nil }
func (r *replyRecorder) SendReply(_ uint64, p ProposalReply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replies = append(r.replies, p)
}

// TestRaftServedRequestsAreBounded: a leader runs at most
// maxServedRequests forwarded requests at once and answers the next one
// ReplyTooMany at once; once stopping it starts none, and stopServing
// waits for those running.
func TestRaftServedRequestsAreBounded(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, maxServedRequests)
	rec := &replyRecorder{}
	n := &Node{transport: rec, stopc: make(chan struct{}), done: make(chan struct{}),
		servingSlots: make(chan struct{}, maxServedRequests),
		cfg: Config{HandleForward: func(ctx context.Context, payload []byte) ([]byte, error) {
			started <- struct{}{}
			<-release
			return payload, nil
		}}}
	n.isLeader.Store(true)
	for i := range maxServedRequests {
		n.startServing(2, ForwardedProposal{RequestID: uint64(i) | forwardRequestBit, Request: true, Data: []byte("x")})
	}
	for range maxServedRequests {
		<-started
	}
	n.startServing(2, ForwardedProposal{RequestID: 999 | forwardRequestBit, Request: true})
	rec.mu.Lock()
	if len(rec.replies) != 1 || rec.replies[0].Code != ReplyTooMany || rec.replies[0].RequestID != 999|forwardRequestBit {
		t.Fatalf("replies while full: %+v, want one ReplyTooMany", rec.replies)
	}
	rec.mu.Unlock()

	stopped := make(chan struct{})
	go func() { n.stopServing(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stopServing returned while requests were running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("stopServing did not return once the requests finished")
	}
	rec.mu.Lock()
	answered := len(rec.replies)
	rec.mu.Unlock()
	if answered != maxServedRequests+1 {
		t.Fatalf("%d replies, want every request answered (%d)", answered, maxServedRequests+1)
	}
	n.startServing(2, ForwardedProposal{RequestID: 1000 | forwardRequestBit, Request: true})
	if len(started) != 0 {
		t.Fatal("a request started after stopServing")
	}
}
