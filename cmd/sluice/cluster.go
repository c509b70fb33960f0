package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
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
	cmd.AddCommand(newClusterInfoCmd(e), newClusterHealthCmd(e), newClusterElectCmd(e))
	return cmd
}

type clusterInfo struct {
	ClusterID  string          `json:"cluster_id"`
	Controller int32           `json:"controller"`
	Brokers    []clusterBroker `json:"brokers"`
}

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
		Short: "Show the cluster id, controller and each broker's address, APIs and features",
		Long: "Show the cluster id, the active controller and each broker: its address, rack,\n" +
			"how many Kafka APIs it serves (--json lists them with their version ranges) and\n" +
			"its finalized features.",
		Example: "  sluice cluster info\n  sluice cluster info --json | jq '.brokers[0].apis | length'",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			ctx, adm, done, err := e.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			info, err := describeCluster(ctx, adm)
			if err != nil {
				return err
			}
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
			return printTable(w, []string{"BROKER", "ADDRESS", "RACK", "APIS", "FEATURES", "ERROR"}, rows)
		},
	}
}

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
			ctx, adm, done, err := e.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			checks, err := checkHealth(ctx, adm)
			if err != nil {
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
				err = printJSON(cmd.OutOrStdout(), map[string]any{"healthy": healthy, "checks": checks})
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

func checkHealth(ctx context.Context, adm *kadm.Client) ([]healthCheck, error) {
	info, err := describeCluster(ctx, adm)
	if err != nil {
		return nil, err
	}
	topics, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
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
			switch {
			case p.Leader < 0:
				offline = append(offline, name)
			case len(p.ISR) < len(p.Replicas):
				underReplicated = append(underReplicated, name)
			}
		}
	}
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
// the failures.
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
