package kraft

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"sync"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/raft"
	"github.com/sluicelog/sluice/internal/vfs"
)

// Options configure Start.
type Options struct {
	Quorum     QuorumConfig
	FS         vfs.FS
	Clock      clock.Clock  // nil: the real clock
	Logger     *slog.Logger // nil: slog.Default()
	Controller controller.Config
	IDs        controller.IDGenerator // nil: crypto/rand
	// Listener, if set, is the quorum listener, already bound (a learner
	// binds port 0 first so it can advertise the real port); otherwise
	// Quorum.ControllerListen is listened on.
	Listener net.Listener
	// TLSServer and TLSClient put the quorum on mutual TLS; nil: plaintext.
	TLSServer, TLSClient *tls.Config
	// SnapshotEntries and TickInterval pass through to the quorum (0: its
	// defaults). SessionCheckInterval is how often the active controller
	// fences brokers whose session expired (0: one second).
	SnapshotEntries      uint64
	TickInterval         time.Duration
	SessionCheckInterval time.Duration
}

// ControlPlane is a node's membership in the metadata quorum.
type ControlPlane struct {
	node *raft.Node
	// started is closed once node is set: the quorum serves forwarded
	// commands from inside raft.Start, before it returns the node.
	started chan struct{}
	state   *imageState
	voters  map[int32]string // controller.quorum.voters, for QuorumStatus
	clock   clock.Clock
	log     *slog.Logger

	// decideMu serializes decisions: each one sees every earlier one.
	// controller is replaced by a fresh one in each term this node leads,
	// so its soft state (broker sessions) never outlives a leadership: a
	// node that leads again must not fence brokers for heartbeats that went
	// to the leader in between.
	decideMu       sync.Mutex
	controller     *controller.Controller
	controllerTerm uint64
	// barrierTerm is the term whose barrier entry this node committed
	// and applied (see decideAndCommit).
	barrierTerm   uint64
	controllerCfg controller.Config
	ids           controller.IDGenerator

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// Start joins the quorum (a voter if the node has the controller role, a
// learner otherwise), replays the metadata log and serves commands.
func Start(opts Options) (*ControlPlane, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.IDs == nil {
		opts.IDs = randomIDs{}
	}
	// One second keeps a dead broker's fencing within a second of
	// broker.session.timeout.ms (9 s). A check is a decision only when a
	// session may have run out, so an idle cluster writes nothing.
	if opts.SessionCheckInterval <= 0 {
		opts.SessionCheckInterval = time.Second
	}
	cp := &ControlPlane{
		state: newImageState(), clock: opts.Clock, log: opts.Logger,
		controllerCfg: opts.Controller.WithDefaults(), ids: opts.IDs, voters: maps.Clone(opts.Quorum.Voters),
		stop: make(chan struct{}), done: make(chan struct{}), started: make(chan struct{}),
	}
	voters := make(map[uint64]string, len(opts.Quorum.Voters))
	for id, addr := range opts.Quorum.Voters {
		voters[uint64(id)] = addr
	}
	node, err := raft.Start(raft.Config{
		NodeID: uint64(opts.Quorum.NodeID), Voters: voters, Learner: !opts.Quorum.IsController(),
		Dir: opts.Quorum.MetadataLogDir, FS: opts.FS, Clock: opts.Clock, Logger: opts.Logger,
		ListenAddr: opts.Quorum.ControllerListen, Listener: opts.Listener, AdvertisedAddr: opts.Quorum.ControllerAdvertised,
		SnapshotEntries: opts.SnapshotEntries, TickInterval: opts.TickInterval, HandleForward: cp.handleForward,
		TLSServer: opts.TLSServer, TLSClient: opts.TLSClient,
	}, cp.state)
	if err != nil {
		return nil, fmt.Errorf("metadata quorum: %w", err)
	}
	cp.node = node
	close(cp.started)
	go cp.runTimers(opts.SessionCheckInterval)
	return cp, nil
}

// Image is the newest committed metadata image on this node.
func (cp *ControlPlane) Image() *metadata.Image {
	img, _ := cp.state.current()
	return img
}

// Watch returns the newest image and a channel closed when a newer one is
// published.
func (cp *ControlPlane) Watch() (*metadata.Image, <-chan struct{}) { return cp.state.current() }

// WaitForOffset waits until this node's image includes metadata offset.
func (cp *ControlPlane) WaitForOffset(ctx context.Context, offset int64) (*metadata.Image, error) {
	for {
		img, changed := cp.state.current()
		if img.Offset() >= offset {
			return img, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return img, ctx.Err()
		}
	}
}

// IsActive says whether this node is the active controller.
func (cp *ControlPlane) IsActive() bool { return cp.node.IsLeader() }

// Leader is the active controller's node id (-1 when unknown).
func (cp *ControlPlane) Leader() int32 {
	if id := cp.node.Leader(); id != 0 {
		return int32(id)
	}
	return -1
}

// Submit has the active controller decide cmd, commits the records it
// emitted, and returns the decision's response (the controller's response
// type for the command) once this node's image includes them. A command
// submitted on a follower is forwarded to the leader.
func (cp *ControlPlane) Submit(ctx context.Context, cmd Command) (any, error) {
	for {
		var resp any
		var index uint64
		var err error
		if cp.node.IsLeader() {
			resp, index, err = cp.decideAndCommit(ctx, cmd)
		} else {
			resp, index, err = cp.forward(ctx, cmd)
		}
		// Only these two are retried: both mean the command was never
		// proposed in a term this node or the one it asked leads, so it
		// cannot have been committed. After ErrOutcomeUnknown it may have
		// been, and deciding again could create a second producer-id
		// block or report TOPIC_ALREADY_EXISTS for the client's own topic.
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrNoLeader) {
			if werr := cp.waitForLeader(ctx); werr != nil {
				return nil, fmt.Errorf("submit %T: %w (%w)", cmd, werr, err)
			}
			continue
		}
		if err != nil {
			return resp, err
		}
		if index > 0 {
			if err := cp.node.WaitApplied(ctx, index); err != nil {
				return resp, err
			}
		}
		return resp, nil
	}
}

// waitForLeader backs off briefly while an election runs. 50 ms is a
// fraction of an election timeout, so a new leader is found soon after it
// wins, without spinning on the node while no leader is known.
func (cp *ControlPlane) waitForLeader(ctx context.Context) error {
	t := cp.clock.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-cp.node.Done():
		// A graceful stop leaves Err nil, which must not read as "retry".
		if err := cp.node.Err(); err != nil {
			return fmt.Errorf("%w: %w", raft.ErrStopped, err)
		}
		return raft.ErrStopped
	}
}

// decideAndCommit runs on the leader. The first decision of each term
// this node leads commits a barrier entry first: once an entry of its own
// term is applied, every entry an earlier leader committed is in the image
// the decision reads (Raft's leader completeness). Later decisions of the
// term need none, since each waits for its own records to be applied
// before the next one runs (decideMu), so the image already holds every
// committed entry; an idle cluster's heartbeats then write nothing. The
// records are bound to the term this node leads in: if it loses the
// leadership meanwhile they fail with raft.ErrNotLeader instead of being
// forwarded to the new leader, which decides concurrently on its own
// image. A decision without records answers from the image without a
// round of the quorum: at worst a leader that was deposed a moment ago
// (CheckQuorum makes a cut-off leader step down within an election
// timeout) answers a heartbeat or a refusal from an image a little old,
// which no safety property rests on. After a proposal whose outcome is
// not known the next decision commits a barrier again. The index is the
// records' entry, or the image's when there are none: what the
// submitter's image must reach to hold what the decision saw.
func (cp *ControlPlane) decideAndCommit(ctx context.Context, cmd Command) (any, uint64, error) {
	cp.decideMu.Lock()
	defer cp.decideMu.Unlock()
	term := cp.node.LeaderTerm()
	if term == 0 {
		return nil, 0, raft.ErrNotLeader // only the leader decides
	}
	if cp.barrierTerm != term {
		if _, err := cp.node.ProposeAsLeader(ctx, term, metadata.AppendRecords(nil, nil)); err != nil {
			return nil, 0, err
		}
		cp.barrierTerm = term
	}
	// A fresh Controller per term: its soft state (broker sessions) must
	// start empty whenever this node starts leading again (see decideMu).
	if cp.controller == nil || cp.controllerTerm != term {
		cp.controller, cp.controllerTerm = controller.New(cp.controllerCfg, cp.ids), term
	}
	img := cp.Image()
	records, resp := cmd.decide(cp.controller, img, clock.UnixMs(cp.clock))
	if len(records) == 0 {
		return resp, uint64(img.Offset()), nil
	}
	index, err := cp.node.ProposeAsLeader(ctx, term, metadata.AppendRecords(nil, records))
	if err != nil {
		// The entry may still commit and apply after this returns (a
		// timeout, an unknown outcome): the next decision must not read
		// an image without it, or it could hand out the same producer-id
		// block twice. A new barrier, appended after it, settles that.
		cp.barrierTerm = 0
		return nil, 0, err
	}
	return resp, index, nil
}

// sessionsMayExpire says whether the session check has anything to do: a
// broker session may have run out, or this term's controller has not
// started the sessions yet. Without it every tick would be a decision,
// and an idle controller would never be idle.
func (cp *ControlPlane) sessionsMayExpire() bool {
	cp.decideMu.Lock()
	defer cp.decideMu.Unlock()
	if cp.controller == nil || cp.controllerTerm != cp.node.LeaderTerm() {
		return true
	}
	nowMs := clock.UnixMs(cp.clock)
	next, live := cp.controller.NextExpiryMs(cp.Image(), nowMs)
	return live && next <= nowMs
}

// forward sends cmd to the leader and waits for its reply.
func (cp *ControlPlane) forward(ctx context.Context, cmd Command) (any, uint64, error) {
	payload, err := encodeForward(cmd)
	if err != nil {
		return nil, 0, err
	}
	reply, err := cp.node.Forward(ctx, payload)
	if err != nil {
		return nil, 0, err
	}
	return decodeReply(reply)
}

// handleForward decides a command forwarded by a follower.
func (cp *ControlPlane) handleForward(ctx context.Context, payload []byte) ([]byte, error) {
	cmd, err := decodeForward(payload)
	if err != nil {
		return nil, err
	}
	select {
	case <-cp.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Refuse before taking decideMu: a deposed leader may hold it for a
	// decision that is about to fail, and the follower is better off
	// asking again, since its next try reaches the new leader.
	if !cp.node.IsLeader() {
		return nil, raft.ErrNotLeader
	}
	resp, index, err := cp.decideAndCommit(ctx, cmd)
	if errors.Is(err, raft.ErrNotLeader) {
		return nil, raft.ErrNotLeader // the follower asks the new leader
	}
	return encodeReply(resp, index, err)
}

// runTimers runs the active controller's own periodic commands: fencing
// brokers whose session lease ran out, and, with
// auto.leader.rebalance.enable, moving leadership back to preferred
// replicas every leader.imbalance.check.interval.seconds. Both go through
// decideAndCommit like any command, so they are serialized with client
// decisions and see every earlier one.
func (cp *ControlPlane) runTimers(sessionCheck time.Duration) {
	defer close(cp.done)
	sessions := cp.clock.NewTicker(sessionCheck)
	defer sessions.Stop()
	var rebalance <-chan time.Time // nil, never ready, when disabled
	if cp.controllerCfg.AutoLeaderRebalanceEnable {
		interval := time.Duration(cp.controllerCfg.LeaderImbalanceCheckIntervalMs) * time.Millisecond
		ticker := cp.clock.NewTicker(interval)
		defer ticker.Stop()
		rebalance = ticker.C()
	}
	for {
		select {
		case <-cp.stop:
			return
		case <-cp.node.Done():
			return
		case <-sessions.C():
			if cp.node.IsLeader() && cp.sessionsMayExpire() {
				cp.runPeriodic(fenceExpired{}, "fencing expired broker sessions")
			}
		case <-rebalance:
			if cp.node.IsLeader() {
				if moved, _ := cp.runPeriodic(rebalanceLeaders{}, "rebalancing partition leadership").(int); moved > 0 {
					cp.log.Info("moved partition leadership back to preferred replicas", "partitions", moved)
				}
			}
		}
	}
}

// runPeriodic decides and commits one of the active controller's own
// commands. Losing the leadership meanwhile is not a failure: the new
// active controller runs its own timers. It returns the decision's
// response, nil on failure.
func (cp *ControlPlane) runPeriodic(cmd Command, what string) any {
	// Bounded so that a stalled commit (a disk that hangs on fsync) does
	// not stop the timers for good; the next tick tries again.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, _, err := cp.decideAndCommit(ctx, cmd)
	if err != nil && !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrStopped) {
		cp.log.Warn(what+" failed", "err", err)
	}
	if err != nil {
		return nil
	}
	return resp
}

// fenceExpired is the active controller's own periodic command.
type fenceExpired struct{}

func (fenceExpired) decide(ctl *controller.Controller, img *metadata.Image, nowMs int64) ([]metadata.Record, any) {
	records, fenced := ctl.FenceExpiredBrokers(img, nowMs)
	return records, fenced
}

// rebalanceLeaders is the auto.leader.rebalance.enable check; its
// response is how many partitions changed leader.
type rebalanceLeaders struct{}

func (rebalanceLeaders) decide(ctl *controller.Controller, img *metadata.Image, _ int64) ([]metadata.Record, any) {
	records := ctl.RebalanceLeaders(img)
	return records, len(records)
}

// Stop leaves the quorum gracefully.
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() { close(cp.stop) })
	err := cp.node.Stop()
	<-cp.done
	return err
}

// Kill stops as a crash would (tests).
func (cp *ControlPlane) Kill() {
	cp.stopOnce.Do(func() { close(cp.stop) })
	cp.node.Kill()
	<-cp.done
}

// randomIDs draws topic ids from crypto/rand.
type randomIDs struct{}

func (randomIDs) NewUUID() metadata.UUID {
	// The zero UUID means "no topic id" on the wire (Kafka's
	// Uuid.ZERO_UUID), so it is never handed out.
	var id metadata.UUID
	for id == (metadata.UUID{}) {
		rand.Read(id[:])
	}
	return id
}
