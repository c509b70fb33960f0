package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "cluster",
		Short:   "Show the cluster's brokers, controller and health; run leader elections",
		Example: "  sluice cluster info\n  sluice cluster health --json\n  sluice cluster elect-leaders --all",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	e := newClientEnv(cmd)
	cmd.AddCommand(newClusterInfoCmd(e), newClusterHealthCmd(e), newClusterElectCmd(e), newClusterConfigCmd(e))
	return cmd
}

// clusterInfo is `cluster info`, and its --json form. Controller is the id
// the Metadata response names, which is always a live broker (the active
// controller if it is one, else the broker that answered, which forwards
// controller-bound requests, KIP-590): a controller-only node never
// appears there, only under Controllers.
type clusterInfo struct {
	ClusterID  string          `json:"cluster_id"`
	Controller int32           `json:"controller"`
	Brokers    []clusterBroker `json:"brokers"`
	// Controllers is the metadata quorum from DescribeQuorum; when it
	// cannot be read, ControllersNote says why instead.
	Controllers     []clusterController `json:"controllers,omitempty"`
	ControllersNote string              `json:"controllers_note,omitempty"`
}

// clusterController is one member of the metadata quorum: a voter
// (leader or follower) or an observer (a broker-only node following the
// log). Offsets and times are -1 where the answering node does not know
// them: only the active controller tracks the others' progress.
type clusterController struct {
	NodeID         int32  `json:"node_id"`
	Address        string `json:"address,omitempty"` // the controller listener (DescribeQuorum v2)
	Role           string `json:"role"`              // leader, follower or observer
	LogEndOffset   int64  `json:"log_end_offset"`
	Lag            int64  `json:"lag"` // the leader's log end offset minus this one's
	LastCaughtUpMs int64  `json:"last_caught_up_ms"`
}

// clusterBroker is one broker from Metadata with what its own ApiVersions
// said. APIs are per broker because brokers of different builds may serve
// different ranges during a rolling upgrade; Error is set when that broker
// did not answer, and the others are still shown.
type clusterBroker struct {
	NodeID   int32            `json:"node_id"`
	Address  string           `json:"address"`
	Rack     string           `json:"rack,omitempty"`
	APIs     []clusterAPI     `json:"apis"`
	Features []clusterFeature `json:"finalized_features"`
	Error    string           `json:"error,omitempty"`
}

type clusterAPI struct {
	Key  int16  `json:"key"`
	Name string `json:"name"`
	Min  int16  `json:"min_version"`
	Max  int16  `json:"max_version"`
}

type clusterFeature struct {
	Name string `json:"name"`
	Min  int16  `json:"min_version"`
	Max  int16  `json:"max_version"`
}

func newClusterInfoCmd(e *clientEnv) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show the cluster id, each broker's address, APIs and features, and the controllers",
		Long: "Show the cluster id, the active controller and each broker: its address, rack,\n" +
			"how many Kafka APIs it serves (--json lists them with their version ranges) and\n" +
			"its finalized features. Then the metadata quorum (DescribeQuorum): each\n" +
			"controller's quorum address and role (leader, follower, or observer for a\n" +
			"broker-only node), its metadata log end offset, its lag behind the leader and\n" +
			"when it was last caught up; '-' where the answering node does not know.",
		Example: "  sluice cluster info\n  sluice cluster info --json | jq '.brokers[0].apis | length'",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			cl, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			adm := kadm.NewClient(cl) // kadm has no DescribeQuorum: cl sends it raw
			defer adm.Close()
			ctx, cancel := e.requestContext(cmd.Context())
			defer cancel()
			info, err := describeCluster(ctx, adm)
			if err != nil {
				return err
			}
			info.Controllers, info.ControllersNote = describeControllers(ctx, cl, info)
			if asJSON {
				return printJSON(cmd.OutOrStdout(), info)
			}
			w := cmd.OutOrStdout()
			if err := printFields(w, [2]string{"Cluster ID", info.ClusterID},
				[2]string{"Controller", strconv.Itoa(int(info.Controller)) + " (active)"}); err != nil {
				return err
			}
			fmt.Fprintln(w)
			rows := make([][]string, 0, len(info.Brokers))
			for _, b := range info.Brokers {
				features := make([]string, 0, len(b.Features))
				for _, f := range b.Features {
					features = append(features, fmt.Sprintf("%s=%d", f.Name, f.Max))
				}
				rows = append(rows, []string{strconv.Itoa(int(b.NodeID)), b.Address, b.Rack,
					strconv.Itoa(len(b.APIs)), strings.Join(features, ","), b.Error})
			}
			if err := printTable(w, []string{"BROKER", "ADDRESS", "RACK", "APIS", "FEATURES", "ERROR"}, rows); err != nil {
				return err
			}
			fmt.Fprintln(w)
			if info.ControllersNote != "" {
				_, err := fmt.Fprintln(w, "Controllers not shown: "+info.ControllersNote)
				return err
			}
			return printControllers(w, info.Controllers, time.Now())
		},
	}
}

// printControllers prints the quorum table. now is passed in so the
// "ago" column can be tested; a timestamp in the future (clock skew
// between machines) reads as 0s ago rather than a negative time.
func printControllers(w io.Writer, controllers []clusterController, now time.Time) error {
	known := func(n int64) string {
		if n < 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	rows := make([][]string, 0, len(controllers))
	for _, c := range controllers {
		caughtUp := ""
		if c.LastCaughtUpMs >= 0 {
			ago := max(now.Sub(time.UnixMilli(c.LastCaughtUpMs)), 0)
			caughtUp = ago.Round(time.Millisecond).String() + " ago"
		}
		rows = append(rows, []string{strconv.Itoa(int(c.NodeID)), c.Address, c.Role,
			known(c.LogEndOffset), known(c.Lag), caughtUp})
	}
	return printTable(w, []string{"CONTROLLER", "ADDRESS", "ROLE", "LOG END OFFSET", "LAG", "LAST CAUGHT UP"}, rows)
}

// metadataTopic is the metadata quorum's log, the one partition
// DescribeQuorum knows.
const metadataTopic = "__cluster_metadata"

// describeControllers asks for the metadata quorum. kgo sends
// DescribeQuorum, an admin request, to the controller the Metadata
// response named. A broker that does not serve it, or a quorum that cannot
// be read, does not fail `cluster info`: the brokers are still worth
// showing, so the reason comes back as a note.
func describeControllers(ctx context.Context, cl *kgo.Client, info *clusterInfo) ([]clusterController, string) {
	// Checking the controller's advertised APIs first gives an older
	// broker a clear note instead of a protocol error, and saves the
	// round trip.
	for _, b := range info.Brokers {
		if b.NodeID == info.Controller && b.Error == "" && !slices.ContainsFunc(b.APIs, func(a clusterAPI) bool { return a.Key == kmsg.DescribeQuorum.Int16() }) {
			return nil, fmt.Sprintf("broker %d does not serve DescribeQuorum (55)", b.NodeID)
		}
	}
	req := kmsg.NewPtrDescribeQuorumRequest()
	req.Topics = []kmsg.DescribeQuorumRequestTopic{{Topic: metadataTopic, Partitions: []kmsg.DescribeQuorumRequestTopicPartition{{Partition: 0}}}}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, "DescribeQuorum: " + err.Error()
	}
	controllers, err := quorumControllers(resp)
	if err != nil {
		return nil, err.Error()
	}
	return controllers, ""
}

// quorumControllers turns a DescribeQuorum response into rows: the
// voters, then the observers, each in id order.
func quorumControllers(resp *kmsg.DescribeQuorumResponse) ([]clusterController, error) {
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		if errors.Is(err, kerr.UnsupportedVersion) {
			return nil, errors.New("the controller does not serve DescribeQuorum (55)")
		}
		return nil, fmt.Errorf("DescribeQuorum: %w", err)
	}
	var p *kmsg.DescribeQuorumResponseTopicPartition
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if resp.Topics[i].Topic == metadataTopic && resp.Topics[i].Partitions[j].Partition == 0 {
				p = &resp.Topics[i].Partitions[j]
			}
		}
	}
	if p == nil {
		return nil, errors.New("DescribeQuorum: no answer for " + metadataTopic + "-0")
	}
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return nil, fmt.Errorf("DescribeQuorum %s-0: %w", metadataTopic, err)
	}
	// DescribeQuorum v2 lists each node's listeners (KIP-853). A node may
	// have several; the one named CONTROLLER, Kafka's conventional name,
	// is the quorum address, and otherwise the first one is shown.
	addresses := map[int32]string{}
	for _, n := range resp.Nodes {
		for _, l := range n.Listeners {
			if _, ok := addresses[n.NodeID]; !ok || l.Name == "CONTROLLER" {
				addresses[n.NodeID] = net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
			}
		}
	}
	// Lag is measured against the leader's log end offset as the leader
	// reports it; only the leader tracks the others' progress, so when a
	// follower answered the offsets are -1 and so is the lag.
	leaderEnd := int64(-1)
	for _, v := range p.CurrentVoters {
		if v.ReplicaID == p.LeaderID {
			leaderEnd = v.LogEndOffset
		}
	}
	var out []clusterController
	add := func(states []kmsg.DescribeQuorumResponseTopicPartitionReplicaState, role func(id int32) string) {
		sorted := slices.SortedFunc(slices.Values(states), func(a, b kmsg.DescribeQuorumResponseTopicPartitionReplicaState) int {
			return cmp.Compare(a.ReplicaID, b.ReplicaID)
		})
		for _, r := range sorted {
			c := clusterController{NodeID: r.ReplicaID, Address: addresses[r.ReplicaID], Role: role(r.ReplicaID),
				LogEndOffset: r.LogEndOffset, Lag: -1, LastCaughtUpMs: r.LastCaughtUpTimestamp}
			// The clamp: the leader's own offset and a follower's are read
			// at slightly different moments, and a lag below zero would
			// only confuse.
			if leaderEnd >= 0 && r.LogEndOffset >= 0 {
				c.Lag = max(leaderEnd-r.LogEndOffset, 0)
			}
			out = append(out, c)
		}
	}
	add(p.CurrentVoters, func(id int32) string {
		if id == p.LeaderID {
			return "leader"
		}
		return "follower"
	})
	add(p.Observers, func(int32) string { return "observer" })
	return out, nil
}

// describeCluster reads Metadata for the brokers and asks each broker for
// its ApiVersions. A broker that does not answer ApiVersions gets an Error
// and does not fail the command: `cluster health` relies on that to report
// a broker down while naming the others.
func describeCluster(ctx context.Context, adm *kadm.Client) (*clusterInfo, error) {
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	versions, err := adm.ApiVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("api versions: %w", err)
	}
	info := &clusterInfo{ClusterID: md.Cluster, Controller: md.Controller}
	for _, b := range md.Brokers {
		cb := clusterBroker{NodeID: b.NodeID, Address: net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))),
			APIs: []clusterAPI{}, Features: []clusterFeature{}}
		if b.Rack != nil {
			cb.Rack = *b.Rack
		}
		v, ok := versions[b.NodeID]
		switch {
		case !ok:
			cb.Error = "no ApiVersions answer"
		case v.Err != nil:
			cb.Error = v.Err.Error()
		default:
			v.EachKeySorted(func(key, lo, hi int16) {
				cb.APIs = append(cb.APIs, clusterAPI{Key: key, Name: kmsg.NameForKey(key), Min: lo, Max: hi})
			})
			for _, f := range v.Raw().FinalizedFeatures {
				cb.Features = append(cb.Features, clusterFeature{Name: f.Name, Min: f.MinVersionLevel, Max: f.MaxVersionLevel})
			}
		}
		info.Brokers = append(info.Brokers, cb)
	}
	return info, nil
}

// healthCheck is one line of `cluster health`. The checks are the ones an
// operator looks at first in Kafka (kafka-topics --describe
// --under-replicated-partitions / --unavailable-partitions, and whether a
// controller is active); each names what failed.
type healthCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func newClusterHealthCmd(e *clientEnv) *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Check brokers, controller and partitions; exit 1 when unhealthy",
		Long: "Check that every broker answers, a controller is active, and no partition is\n" +
			"offline (no leader) or under-replicated (fewer in-sync replicas than replicas).\n" +
			"Exits 0 when all checks pass and 1 otherwise, naming what failed.",
		Example: "  sluice cluster health\n  sluice cluster health --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			checks, err := runHealthChecks(cmd.Context(), e)
			if err != nil {
				var usage usageError
				if asJSON && !errors.As(err, &usage) {
					// A script reading --json gets its document in every
					// case, the unreachable cluster included.
					failed := healthCheck{Name: "brokers", OK: false, Detail: err.Error()}
					if perr := printJSON(cmd.OutOrStdout(), healthReport{Healthy: false, Checks: []healthCheck{failed}, Error: err.Error()}); perr != nil {
						return perr
					}
				}
				return err
			}
			healthy := true
			var failed []string
			for _, c := range checks {
				if !c.OK {
					healthy = false
					failed = append(failed, c.Name+": "+c.Detail)
				}
			}
			if asJSON {
				err = printJSON(cmd.OutOrStdout(), healthReport{Healthy: healthy, Checks: checks})
			} else {
				rows := make([][]string, 0, len(checks))
				for _, c := range checks {
					status := "ok"
					if !c.OK {
						status = "FAIL"
					}
					rows = append(rows, []string{c.Name, status, c.Detail})
				}
				err = printTable(cmd.OutOrStdout(), []string{"CHECK", "STATUS", "DETAIL"}, rows)
			}
			if err != nil {
				return err
			}
			if !healthy {
				return errors.New("cluster unhealthy: " + strings.Join(failed, "; "))
			}
			return nil
		},
	}
}

// healthReport is `cluster health --json`. Error is set when the checks
// could not run at all (no broker answers); Checks then holds the one
// that failed.
type healthReport struct {
	Healthy bool          `json:"healthy"`
	Checks  []healthCheck `json:"checks"`
	Error   string        `json:"error,omitempty"`
}

// runHealthChecks connects and runs checkHealth.
func runHealthChecks(ctx context.Context, e *clientEnv) ([]healthCheck, error) {
	ctx, adm, done, err := e.adminSession(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return checkHealth(ctx, adm)
}

// checkHealth runs the checks. It fails as a whole only when the cluster
// cannot be read at all; a failed check is a result, reported with the
// others.
func checkHealth(ctx context.Context, adm *kadm.Client) ([]healthCheck, error) {
	info, err := describeCluster(ctx, adm)
	if err != nil {
		return nil, err
	}
	topics, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	// Internal topics are included: an offline __consumer_offsets
	// partition stops every consumer group it holds, which is exactly what
	// a health check should catch.
	var down, offline, underReplicated []string
	for _, b := range info.Brokers {
		if b.Error != "" {
			down = append(down, fmt.Sprintf("broker %d (%s): %s", b.NodeID, b.Address, b.Error))
		}
	}
	partitions := 0
	for _, t := range topics.Sorted() {
		for _, p := range t.Partitions.Sorted() {
			partitions++
			name := t.Topic + "/" + strconv.Itoa(int(p.Partition))
			// Offline wins over under-replicated: a partition without a
			// leader serves nothing, whatever its ISR says.
			switch {
			case p.Leader < 0:
				offline = append(offline, name)
			case len(p.ISR) < len(p.Replicas):
				underReplicated = append(underReplicated, name)
			}
		}
	}
	// The Metadata controller id is a live broker by construction (see
	// clusterInfo), so one missing from the broker list means the answer
	// came from a broker whose metadata is stale.
	controllerOK := info.Controller >= 0 && slices.ContainsFunc(info.Brokers, func(b clusterBroker) bool { return b.NodeID == info.Controller })
	controllerDetail := "controller is node " + strconv.Itoa(int(info.Controller))
	if info.Controller < 0 {
		controllerDetail = "no active controller"
	}
	return []healthCheck{
		listCheck("brokers", down, fmt.Sprintf("%d broker(s) answer", len(info.Brokers))),
		{Name: "controller", OK: controllerOK, Detail: controllerDetail},
		listCheck("offline partitions", offline, fmt.Sprintf("all %d partitions have a leader", partitions)),
		listCheck("under-replicated partitions", underReplicated, fmt.Sprintf("all %d partitions fully in sync", partitions)),
	}, nil
}

// listCheck passes when bad is empty, and otherwise names up to ten of
// the failures: enough to start from, while a cluster with thousands of
// under-replicated partitions still prints one readable line (the count
// says how many there are).
func listCheck(name string, bad []string, okDetail string) healthCheck {
	if len(bad) == 0 {
		return healthCheck{Name: name, OK: true, Detail: okDetail}
	}
	shown := bad[:min(len(bad), 10)]
	detail := fmt.Sprintf("%d: %s", len(bad), strings.Join(shown, ", "))
	if len(bad) > len(shown) {
		detail += ", ..."
	}
	return healthCheck{Name: name, OK: false, Detail: detail}
}
