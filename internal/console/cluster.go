package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type brokerRow struct {
	NodeID     int32
	Address    string
	Rack       string
	Controller bool // the active controller, as Metadata names it
	// APIs are the request types and version ranges the broker
	// advertises in ApiVersions. Kafka has no field for a broker's
	// software name or version, so this is what "version" means here.
	APIs []apiRange
	// Produce and Fetch are the highest versions the broker serves:
	// what decides which client features work.
	Produce, Fetch int16
	Err            string
}

type apiRange struct {
	Key      int16
	Name     string
	Min, Max int16
}

type controllerRow struct {
	NodeID         int32
	Role           string // leader, follower or observer
	LogEndOffset   int64
	Lag            int64
	LastCaughtUpMs int64
}

type clusterData struct {
	ClusterID       string
	Controller      int32
	Brokers         []brokerRow
	Controllers     []controllerRow
	ControllersNote string
	QuorumEpoch     int32
	Topics          int
	Partitions      int
	UnderReplicated int
	Offline         int
}

func (c *Console) clusterPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.requestContext(r)
	defer cancel()
	data, err := c.readCluster(ctx)
	c.render(w, statusFor(err), "cluster", page{Title: "Cluster", Nav: "cluster", Error: errText(err), Data: data})
}

func (c *Console) readCluster(ctx context.Context) (clusterData, error) {
	var data clusterData
	md, err := c.admin.Metadata(ctx)
	if err != nil {
		return data, fmt.Errorf("metadata: %w", err)
	}
	data.ClusterID, data.Controller = md.Cluster, md.Controller
	for _, t := range md.Topics {
		data.Topics++
		for _, p := range t.Partitions {
			data.Partitions++
			if p.Leader < 0 {
				data.Offline++
			}
			if len(p.ISR) < len(p.Replicas) {
				data.UnderReplicated++
			}
		}
	}
	versions, errVersions := c.admin.ApiVersions(ctx)
	for _, b := range md.Brokers {
		data.Brokers = append(data.Brokers, brokerRowOf(b, versions, md.Controller))
	}
	slices.SortFunc(data.Brokers, func(a, b brokerRow) int { return cmp.Compare(a.NodeID, b.NodeID) })
	data.Controllers, data.QuorumEpoch, data.ControllersNote = c.readQuorum(ctx)
	return data, errVersions
}

func brokerRowOf(b kadm.BrokerDetail, versions kadm.BrokersApiVersions, controller int32) brokerRow {
	row := brokerRow{NodeID: b.NodeID, Address: net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))),
		Rack: derefString(b.Rack), Controller: b.NodeID == controller, Produce: -1, Fetch: -1}
	v, ok := versions[b.NodeID]
	switch {
	case !ok:
		row.Err = "no ApiVersions answer"
	case v.Err != nil:
		row.Err = v.Err.Error()
	default:
		v.EachKeySorted(func(key, lo, hi int16) {
			row.APIs = append(row.APIs, apiRange{Key: key, Name: kmsg.NameForKey(key), Min: lo, Max: hi})
		})
		row.Produce, _ = v.KeyMaxVersion(kmsg.Produce.Int16())
		row.Fetch, _ = v.KeyMaxVersion(kmsg.Fetch.Int16())
	}
	return row
}

// metadataTopic is the metadata quorum's log, the one partition
// DescribeQuorum answers for.
const metadataTopic = "__cluster_metadata"

// readQuorum asks for the metadata quorum with a raw DescribeQuorum (kadm
// has no call for it). kgo routes it to the controller Metadata named. A
// failure does not fail the page: it comes back as a note.
func (c *Console) readQuorum(ctx context.Context) ([]controllerRow, int32, string) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	req.Topics = []kmsg.DescribeQuorumRequestTopic{{Topic: metadataTopic,
		Partitions: []kmsg.DescribeQuorumRequestTopicPartition{{Partition: 0}}}}
	resp, err := req.RequestWith(ctx, c.client)
	if err != nil {
		return nil, -1, "DescribeQuorum: " + err.Error()
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, -1, "DescribeQuorum: " + err.Error()
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if t.Topic != metadataTopic || p.Partition != 0 {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, -1, "DescribeQuorum: " + err.Error()
			}
			return quorumRows(p), p.LeaderEpoch, ""
		}
	}
	return nil, -1, "DescribeQuorum: " + errors.New("no answer for "+metadataTopic+"-0").Error()
}

// quorumRows lists the voters, then the observers (broker-only nodes,
// Raft learners), each in id order, with their lag behind the leader.
func quorumRows(p kmsg.DescribeQuorumResponseTopicPartition) []controllerRow {
	leaderEnd := int64(-1)
	for _, v := range p.CurrentVoters {
		if v.ReplicaID == p.LeaderID {
			leaderEnd = v.LogEndOffset
		}
	}
	var rows []controllerRow
	add := func(states []kmsg.DescribeQuorumResponseTopicPartitionReplicaState, voters bool) {
		for _, s := range slices.SortedFunc(slices.Values(states), func(a, b kmsg.DescribeQuorumResponseTopicPartitionReplicaState) int {
			return cmp.Compare(a.ReplicaID, b.ReplicaID)
		}) {
			row := controllerRow{NodeID: s.ReplicaID, Role: "observer", LogEndOffset: s.LogEndOffset, Lag: -1, LastCaughtUpMs: s.LastCaughtUpTimestamp}
			if voters {
				row.Role = "follower"
				if s.ReplicaID == p.LeaderID {
					row.Role = "leader (active controller)"
				}
			}
			if leaderEnd >= 0 && s.LogEndOffset >= 0 {
				row.Lag = max(leaderEnd-s.LogEndOffset, 0)
			}
			rows = append(rows, row)
		}
	}
	add(p.CurrentVoters, true)
	add(p.Observers, false)
	return rows
}
