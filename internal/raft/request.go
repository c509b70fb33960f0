package raft

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Forwarded requests let a member ask the leader to run something that is
// not a log entry: the controller deciding a command submitted on a
// follower (KIP-590's forwarding, between controllers). They ride the
// proposal and reply frames with the request flag; their ids have the top
// bit set so replies never meet a forwarded proposal's.

const forwardRequestBit = 1 << 63

// maxForwardWait bounds a Forward whose leader died before answering: the
// caller learns the outcome is unknown and may retry.
const maxForwardWait = 10 * time.Second

// forwardRequests are the Forward calls waiting for a reply.
type forwardRequests struct {
	mu      sync.Mutex
	next    uint64
	waiting map[uint64]forwardWaiter
}

type forwardWaiter struct {
	to    uint64
	reply chan ProposalReply
}

func (f *forwardRequests) add(to uint64) (uint64, chan ProposalReply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waiting == nil {
		f.waiting = map[uint64]forwardWaiter{}
	}
	f.next++
	id := f.next | forwardRequestBit
	ch := make(chan ProposalReply, 1)
	f.waiting[id] = forwardWaiter{to: to, reply: ch}
	return id, ch
}

func (f *forwardRequests) remove(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.waiting, id)
}

// deliver hands a reply to its waiter; replies from anyone but the member
// asked are ignored.
func (f *forwardRequests) deliver(from uint64, r ProposalReply) {
	f.mu.Lock()
	w, ok := f.waiting[r.RequestID]
	if ok && w.to == from {
		delete(f.waiting, r.RequestID)
	}
	f.mu.Unlock()
	if ok && w.to == from {
		r.Payload = append([]byte(nil), r.Payload...) // the frame buffer is reused
		w.reply <- r
	}
}

// Forward sends payload to the leader's Config.HandleForward and returns its
// answer. It fails with ErrNoLeader when no leader is known and ErrNotLeader
// when this node leads or the one asked no longer does: the caller retries
// (or, leading itself, handles the request locally). A leader that dies
// before answering gives ErrOutcomeUnknown.
func (n *Node) Forward(ctx context.Context, payload []byte) ([]byte, error) {
	leader := n.Leader()
	switch {
	case leader == 0:
		return nil, ErrNoLeader
	case leader == n.cfg.NodeID:
		return nil, ErrNotLeader
	}
	ctx, cancel := context.WithTimeout(ctx, maxForwardWait)
	defer cancel()
	id, ch := n.requests.add(leader)
	defer n.requests.remove(id)
	n.transport.SendProposal(leader, ForwardedProposal{RequestID: id, Request: true, Data: payload})
	select {
	case r := <-ch:
		return requestResult(r)
	case <-n.done:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, fmt.Errorf("forward to leader %d: %w (%w)", leader, ErrOutcomeUnknown, ctx.Err())
	}
}

func requestResult(r ProposalReply) ([]byte, error) {
	switch r.Code {
	case ReplyOK:
		return r.Payload, nil
	case ReplyNotLeader:
		return nil, ErrNotLeader
	case ReplyFailed:
		return nil, fmt.Errorf("leader: %s", r.Payload)
	}
	return nil, r.Code.err()
}

// maxServedRequests bounds the forwarded requests a leader runs at once;
// past it a request is answered ReplyTooMany at once (the forwarding
// member's Submit retries), so followers cannot pile up goroutines on it.
const maxServedRequests = 256

// startServing runs a forwarded request on a goroutine of its own (the
// handler proposes, which needs the driver goroutine free) if a slot is
// free, owned by the node: Stop waits for it.
func (n *Node) startServing(from uint64, p ForwardedProposal) {
	select {
	case n.servingSlots <- struct{}{}:
	default:
		n.transport.SendReply(from, ProposalReply{RequestID: p.RequestID, Code: ReplyTooMany})
		return
	}
	n.servingMu.Lock()
	if n.servingShut {
		n.servingMu.Unlock()
		<-n.servingSlots
		return // stopping: the forwarding member times out and retries elsewhere
	}
	n.serving.Add(1)
	n.servingMu.Unlock()
	p.Data = append([]byte(nil), p.Data...) // the frame buffer is reused
	go func() {
		defer n.serving.Done()
		defer func() { <-n.servingSlots }()
		n.serveRequest(from, p)
	}()
}

// serveRequest runs a forwarded request and sends the answer back.
func (n *Node) serveRequest(from uint64, p ForwardedProposal) {
	reply := ProposalReply{RequestID: p.RequestID, Code: ReplyOK}
	switch {
	case !n.IsLeader():
		reply.Code = ReplyNotLeader
	case n.cfg.HandleForward == nil:
		reply.Code, reply.Payload = ReplyFailed, []byte("this member handles no forwarded requests")
	default:
		ctx, cancel := context.WithTimeout(context.Background(), maxForwardWait)
		answer, err := n.cfg.HandleForward(ctx, p.Data)
		cancel()
		switch {
		case errors.Is(err, ErrNotLeader):
			reply.Code = ReplyNotLeader
		case err != nil:
			reply.Code, reply.Payload = ReplyFailed, []byte(err.Error())
		default:
			reply.Payload = answer
		}
	}
	select {
	case <-n.done:
	default:
		n.transport.SendReply(from, reply)
	}
}
