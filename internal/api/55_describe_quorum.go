package api

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/partition"
)

// DescribeQuorum v0–2 (KIP-595; kafka-metadata-quorum.sh describe
// --status/--replication): the metadata quorum's leader, epoch (the Raft
// term), high watermark, voters and observers (Raft learners: broker-only
// nodes) with their replication progress. Every version is flexible; v1
// adds each member's last fetch and last caught-up times; v2 (KIP-853)
// adds error messages, replica directory ids (Sluice has none: zero) and
// the voters' controller endpoints.
//
// Offsets are Kafka's exclusive form: the high watermark and each log end
// offset are the offset just past the last entry counted, which equals
// the Raft index, since Raft index i is stored at metadata log offset i-1.
//
// Kafka forwards this request to the active controller. Here a node that
// does not lead answers from its own state instead: leader, epoch, high
// watermark and membership as it knows them, its own log end offset, and
// -1 for every other member's progress and times, which only the leader
// tracks. `sluice cluster info` sends it through kgo, which routes admin
// requests to the controller the Metadata response names, so it reaches
// the leader whenever the leader is also a broker.
var describeQuorumHandler = handler{key: 55, minVersion: 0, maxVersion: 2, serve: serveDescribeQuorum}

// describeQuorumListener is the listener name v2 reports for each voter's
// controller endpoint, as Kafka's default controller.listener.names.
const describeQuorumListener = "CONTROLLER"

func serveDescribeQuorum(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeQuorumRequest)
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	if err := b.authz(r).cluster(auth.OpDescribe); err != nil {
		resp.ErrorCode = errorCode(err)
		if req.Version >= 2 {
			resp.ErrorMessage = errorMessage(err)
		}
		return resp, nil
	}
	var status *kraft.QuorumStatus // read once, only if asked about
	for _, t := range req.Topics {
		rt := kmsg.NewDescribeQuorumResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeQuorumResponseTopicPartition()
			rp.Partition = p.Partition
			if t.Topic != adminMetadataTopic || p.Partition != 0 {
				err := fmt.Errorf("%s-%d: only %s-0 has a quorum: %w", t.Topic, p.Partition, adminMetadataTopic, partition.ErrUnknownTopicOrPartition)
				rp.ErrorCode = errorCode(err)
				if req.Version >= 2 {
					rp.ErrorMessage = errorMessage(err)
				}
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			if status == nil {
				st, err := b.Control.QuorumStatus(ctx)
				if err != nil {
					// The quorum cannot be read at all (the node is
					// stopping, or the deadline passed): the whole request
					// fails, as Kafka's does when the leader is unknown.
					err = fmt.Errorf("read the metadata quorum's status: %w", err)
					resp.ErrorCode = errorCode(err)
					if req.Version >= 2 {
						resp.ErrorMessage = errorMessage(err)
					}
					resp.Topics = nil
					return resp, nil
				}
				status = &st
			}
			fillQuorumPartition(&rp, status)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if status != nil && req.Version >= 2 {
		resp.Nodes = quorumNodes(status)
	}
	return resp, nil
}

func fillQuorumPartition(rp *kmsg.DescribeQuorumResponseTopicPartition, st *kraft.QuorumStatus) {
	rp.LeaderID, rp.LeaderEpoch, rp.HighWatermark = st.LeaderID, st.LeaderEpoch, st.HighWatermark
	rp.CurrentVoters = quorumReplicas(st.Voters)
	rp.Observers = quorumReplicas(st.Observers)
}

func quorumReplicas(members []kraft.QuorumMember) []kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
	out := make([]kmsg.DescribeQuorumResponseTopicPartitionReplicaState, 0, len(members))
	for _, m := range members {
		rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		rs.ReplicaID, rs.LogEndOffset = m.NodeID, m.LogEndOffset
		rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = m.LastFetchMs, m.LastCaughtUpMs
		out = append(out, rs)
	}
	return out
}

// quorumNodes lists each voter's controller listener from
// controller.quorum.voters. A voter whose configured address cannot be
// split (never, once the config parsed) is listed without a listener
// rather than with a made-up one.
func quorumNodes(st *kraft.QuorumStatus) []kmsg.DescribeQuorumResponseNode {
	nodes := make([]kmsg.DescribeQuorumResponseNode, 0, len(st.Voters))
	for _, v := range st.Voters {
		n := kmsg.NewDescribeQuorumResponseNode()
		n.NodeID = v.NodeID
		host, portText, err := net.SplitHostPort(st.VoterAddresses[v.NodeID])
		if port, perr := strconv.ParseUint(portText, 10, 16); err == nil && perr == nil {
			l := kmsg.NewDescribeQuorumResponseNodeListener()
			l.Name, l.Host, l.Port = describeQuorumListener, host, uint16(port)
			n.Listeners = append(n.Listeners, l)
		}
		nodes = append(nodes, n)
	}
	return nodes
}
