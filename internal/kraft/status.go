package kraft

import (
	"context"
	"maps"
	"math"

	"github.com/sluicelog/sluice/internal/raft"
)

// QuorumStatus is this node's view of the metadata quorum, in Kafka's
// terms (DescribeQuorum, kafka-metadata-quorum.sh).
//
// Offsets are Kafka's exclusive form: the offset just past the last entry
// counted. A Raft index i is stored at metadata log offset i-1 (see
// docs/metadata.md), so the end offset of a log whose last entry has
// index i is i itself, and the high watermark is the commit index. This is
// also what metadata.Image.Offset and broker heartbeats report.
type QuorumStatus struct {
	NodeID        int32
	LeaderID      int32 // -1 when unknown
	LeaderEpoch   int32 // the Raft term
	HighWatermark int64
	// IsLeader says the progress below is the leader's own knowledge;
	// on any other node only this node's own log end offset is known.
	IsLeader bool
	Voters   []QuorumMember // sorted by id
	// Observers are the Raft learners: broker-only nodes following the log.
	Observers []QuorumMember
	// VoterAddresses is controller.quorum.voters: each voter's controller
	// listener, host:port.
	VoterAddresses map[int32]string
}

// QuorumMember is one member's replication state; -1 where unknown.
type QuorumMember struct {
	NodeID       int32
	LogEndOffset int64
	// LastFetchMs is when the leader last heard from the member, and
	// LastCaughtUpMs the last time its log held all of the leader's (Unix
	// milliseconds).
	LastFetchMs    int64
	LastCaughtUpMs int64
}

// QuorumStatus reads the quorum's state from the Raft driver.
func (cp *ControlPlane) QuorumStatus(ctx context.Context) (QuorumStatus, error) {
	st, err := cp.node.Status(ctx)
	if err != nil {
		return QuorumStatus{}, err
	}
	return quorumStatus(st, cp.voters), nil
}

// quorumStatus converts the Raft view to Kafka's.
func quorumStatus(st raft.Status, voters map[int32]string) QuorumStatus {
	qs := QuorumStatus{
		NodeID: int32(st.NodeID), LeaderID: -1, LeaderEpoch: int32(min(st.Term, math.MaxInt32)),
		HighWatermark: int64(st.CommitIndex), IsLeader: st.IsLeader, VoterAddresses: maps.Clone(voters),
	}
	if st.Leader != 0 {
		qs.LeaderID = int32(st.Leader)
	}
	member := func(id uint64) QuorumMember {
		m := QuorumMember{NodeID: int32(id), LogEndOffset: -1, LastFetchMs: -1, LastCaughtUpMs: -1}
		if p, ok := st.Progress[id]; ok {
			m.LogEndOffset, m.LastFetchMs, m.LastCaughtUpMs = int64(p.Match), p.LastHeardMs, p.LastCaughtUpMs
		}
		if id == st.NodeID {
			// Its own durable log, which every node knows.
			m.LogEndOffset = int64(st.LastIndex)
		}
		return m
	}
	for _, id := range st.Voters {
		qs.Voters = append(qs.Voters, member(id))
	}
	for _, id := range st.Learners {
		qs.Observers = append(qs.Observers, member(id))
	}
	return qs
}
