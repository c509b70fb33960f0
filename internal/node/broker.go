package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/vfs"
)

// brokerSession is this broker's membership in the cluster: registered with
// the controller, kept alive (and unfenced) by heartbeats. Its epoch is what
// producer-id blocks are requested with.
type brokerSession struct {
	cp        *kraft.ControlPlane
	id        int32
	listeners []metadata.Listener
	rack      string
	interval  time.Duration
	clock     clock.Clock
	log       *slog.Logger
	// incarnation is this process's, previousIncarnation the one that ran
	// on the log directory before it (zero on a first start); see
	// newIncarnation.
	incarnation, previousIncarnation metadata.UUID

	mu    sync.Mutex
	epoch int64
}

// register registers the broker and heartbeats until the controller
// unfences it, so the broker is given leadership only once it can serve.
//
// After a crash, the previous incarnation's session is still alive at the
// controller (a new controller gives every broker a fresh session, as
// Kafka's does). The registration names that incarnation, read from the
// log directory, and the controller replaces it at once. Only when it
// cannot be named (the file was lost) is the registration refused until
// the old session expires, at most broker.session.timeout.ms. A clean
// shutdown fences the broker, and the next start registers at once either
// way.
//
// The incarnation is the same for every registration of this process, so
// the controller tells a restart from a retry: the same incarnation
// registering again (a forwarded request retried after a leader change, or
// run re-registering after the controller forgot it) is idempotent.
func (s *brokerSession) register(ctx context.Context) error {
	var reg controller.RegisterBrokerResponse
	for logged := false; ; {
		resp, err := s.submitWaitingForQuorum(ctx, kraft.RegisterBroker{Request: controller.RegisterBrokerRequest{
			BrokerID: s.id, Incarnation: s.incarnation, PreviousIncarnation: s.previousIncarnation,
			Listeners: s.listeners, Rack: s.rack,
		}})
		if err != nil {
			return fmt.Errorf("register broker %d: %w", s.id, err)
		}
		reg = resp.(controller.RegisterBrokerResponse)
		if !errors.Is(reg.Err, controller.ErrDuplicateBrokerRegistration) {
			break
		}
		if !logged {
			s.log.Info("waiting for the previous run's broker session to expire (it did not shut down cleanly, and its incarnation is not known)", "broker", s.id)
			logged = true
		}
		// A few tries a second against a session timeout of seconds: the
		// wait ends soon after the old session expires, without flooding
		// the controller (each try is a decision and a Raft entry).
		if err := s.sleep(ctx, 250*time.Millisecond); err != nil {
			return fmt.Errorf("register broker %d: %w (%w)", s.id, err, reg.Err)
		}
	}
	if reg.Err != nil {
		return fmt.Errorf("register broker %d: %w", s.id, reg.Err)
	}
	s.mu.Lock()
	s.epoch = reg.BrokerEpoch
	s.mu.Unlock()
	for {
		hb, err := s.heartbeat(ctx, false)
		if err != nil {
			return err
		}
		if !hb.IsFenced {
			return nil
		}
		// Unfencing waits only for this node to replay the metadata up
		// to its own registration, a matter of milliseconds, so the
		// first client request is not delayed by a long poll.
		if err := s.sleep(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("broker %d still fenced: %w", s.id, err)
		}
	}
}

// incarnationFile holds the incarnation of the broker process running on
// the log directory, or of the last one that did:
//
//	<32 lowercase hex digits>\n
//
// It is replaced (atomically, synced) under the directory's lock before the
// broker registers, so the next process on the directory can name it as
// its previous incarnation. Holding the lock proves that process is gone:
// the lock is an flock the kernel releases only when its holder dies. Do
// not change the format.
const incarnationFile = ".sluice_incarnation"

// newIncarnation draws this process's incarnation, records it in dir and
// returns it with the one the file held before (zero if none, or if the
// file is unreadable: then a restart after a crash waits out the old
// session, as before this file existed). The caller holds dir's lock.
func newIncarnation(fsys vfs.FS, dir string) (current, previous metadata.UUID, err error) {
	path := filepath.Join(dir, incarnationFile)
	data, err := vfs.ReadFile(fsys, path, 1<<10)
	switch {
	case err == nil:
		if b, decErr := hex.DecodeString(strings.TrimSpace(string(data))); decErr == nil && len(b) == len(previous) {
			copy(previous[:], b)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return current, previous, fmt.Errorf("read %s: %w", path, err)
	}
	// crypto/rand.Read cannot fail since Go 1.24 (it aborts the program
	// instead); zero is not an incarnation, so it is drawn again.
	for current == (metadata.UUID{}) || current == previous {
		_, _ = rand.Read(current[:])
	}
	if err := vfs.WriteFileAtomic(fsys, path, []byte(hex.EncodeToString(current[:])+"\n")); err != nil {
		return current, previous, err
	}
	return current, previous, nil
}

// quorumWaitLogInterval is how often a broker waiting for the controller
// quorum says so.
const quorumWaitLogInterval = 10 * time.Second

// submitWaitingForQuorum submits a command, retrying for as long as ctx
// allows while no controller quorum answers: the nodes of a cluster may
// start in any order and at different times, and a broker waits for a
// majority of the voters as Kafka's does, saying now and then what it is
// waiting for. The command must be idempotent (registering the same
// incarnation again is).
func (s *brokerSession) submitWaitingForQuorum(ctx context.Context, cmd kraft.Command) (any, error) {
	for {
		attempt, cancel := context.WithTimeout(ctx, quorumWaitLogInterval)
		resp, err := s.cp.Submit(attempt, cmd)
		cancel()
		if err == nil || ctx.Err() != nil || attempt.Err() == nil {
			return resp, err
		}
		s.log.Info("waiting for a majority of controller.quorum.voters to elect a leader", "broker", s.id, "err", err)
	}
}

func (s *brokerSession) sleep(ctx context.Context, d time.Duration) error {
	t := s.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// shutDown tells the controller this broker is stopping (Kafka's controlled
// shutdown): it is fenced and leadership moves to other replicas, if any,
// and a restart can register again without waiting for the session to
// expire. Node.controlledShutdown bounds it.
func (s *brokerSession) shutDown(ctx context.Context) error {
	_, err := s.heartbeat(ctx, true)
	return err
}

func (s *brokerSession) brokerEpoch() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

func (s *brokerSession) heartbeat(ctx context.Context, shuttingDown bool) (controller.BrokerHeartbeatResponse, error) {
	// CurrentMetadataOffset is what the controller unfences on: a broker
	// that has not replayed up to its own registration would host
	// partitions from an image older than the one it was registered in.
	resp, err := s.cp.Submit(ctx, kraft.BrokerHeartbeat{Request: controller.BrokerHeartbeatRequest{
		BrokerID: s.id, BrokerEpoch: s.brokerEpoch(), CurrentMetadataOffset: s.cp.Image().Offset(),
		WantShutDown: shuttingDown,
	}})
	if err != nil {
		return controller.BrokerHeartbeatResponse{}, fmt.Errorf("broker %d heartbeat: %w", s.id, err)
	}
	hb := resp.(controller.BrokerHeartbeatResponse)
	if hb.Err != nil {
		return hb, fmt.Errorf("broker %d heartbeat: %w", s.id, hb.Err)
	}
	return hb, nil
}

// run heartbeats until ctx ends. A heartbeat the controller rejects for a
// stale epoch (it fenced and forgot us, say after a long pause) makes the
// broker register again.
func (s *brokerSession) run(ctx context.Context, onError func(error)) {
	t := s.clock.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		// Bounded (four intervals, 8 s by default) so a heartbeat stuck
		// behind a controller that died gives up, and the loop tries again
		// on the new one; a new active controller starts every broker's
		// session afresh, so the gap does not get this broker fenced.
		hctx, cancel := context.WithTimeout(ctx, 4*s.interval)
		_, err := s.heartbeat(hctx, false)
		if errors.Is(err, controller.ErrStaleBrokerEpoch) || errors.Is(err, controller.ErrUnknownBroker) {
			err = s.register(hctx)
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			onError(err)
		}
	}
}

// producerIDBlocks hands out producer ids from blocks the controller
// allocates to this broker, one Raft entry per block rather than per id.
type producerIDBlocks struct {
	session *brokerSession

	mu        sync.Mutex
	next, end int64
}

// NextProducerID returns an id no other producer in the cluster was given.
//
// The lock is held across the Submit on purpose: concurrent InitProducerId
// requests wait for one new block instead of each allocating its own.
func (p *producerIDBlocks) NextProducerID(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= p.end {
		resp, err := p.session.cp.Submit(ctx, kraft.AllocateProducerIDs{BrokerID: p.session.id, BrokerEpoch: p.session.brokerEpoch()})
		if err != nil {
			return -1, fmt.Errorf("allocate producer ids: %w", err)
		}
		block := resp.(controller.AllocateProducerIDsResponse)
		if block.Err != nil {
			return -1, fmt.Errorf("allocate producer ids: %w", block.Err)
		}
		p.next, p.end = block.ProducerIDStart, block.ProducerIDStart+int64(block.ProducerIDLen)
	}
	id := p.next
	p.next++
	return id, nil
}
