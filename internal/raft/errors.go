package raft

import "errors"

// Domain errors of the quorum. Whether a proposal may be retried safely
// depends on which: a proposal that failed with ErrProposalDropped or
// ErrProposalLost was certainly not committed; after ErrOutcomeUnknown,
// ErrStopped or a context error it may or may not have been.
var (
	// ErrStopped: the node was stopped (or failed); the outcome of a pending
	// proposal is unknown.
	ErrStopped = errors.New("quorum node stopped")
	// ErrNotLeader: a forwarded request reached a node that no longer
	// leads; send it to the current leader.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader: no leader is known (an election is running).
	ErrNoLeader = errors.New("no leader known")
	// ErrProposalDropped: Raft refused the proposal (a leadership transfer,
	// too many uncommitted entries, the leader left the quorum). Not
	// committed; retry.
	ErrProposalDropped = errors.New("proposal dropped")
	// ErrProposalLost: a new leader wrote another entry at the index the
	// proposal had. Not committed; retry.
	ErrProposalLost = errors.New("proposal lost to a leader change")
	// ErrOutcomeUnknown: the proposal's index was passed without this node
	// seeing the entry (a snapshot covered it), or the leader gave up
	// waiting for it. It may have been committed.
	ErrOutcomeUnknown = errors.New("proposal outcome unknown")
	// ErrTooManyProposals: too many proposals are waiting; back off.
	ErrTooManyProposals = errors.New("too many pending proposals")
	// ErrProposalTooLarge: the proposal is larger than MaxProposalBytes.
	ErrProposalTooLarge = errors.New("proposal too large")
	// ErrEmptyProposal: a proposal needs data; Raft's own no-op entries are
	// the empty ones.
	ErrEmptyProposal = errors.New("empty proposal")
	// ErrSnapshotTooLarge: the state machine's snapshot does not fit a
	// snapshot file (and so a transport frame); no snapshot is taken.
	ErrSnapshotTooLarge = errors.New("snapshot too large")
)
