package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/config"
)

// `sluice cluster config` reads and changes broker configs, as
// `rpk cluster config` and `kafka-configs --entity-type brokers` do:
// DescribeConfigs on the BROKER resource named by a node id, and
// IncrementalAlterConfigs on the cluster-wide default (the BROKER resource
// with an empty name) or on one node.

func newClusterConfigCmd(e *clientEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Describe, get and set broker configs (cluster-wide or per node)",
		Example: "  sluice cluster config describe\n" +
			"  sluice cluster config get log.retention.ms --node 2\n" +
			"  sluice cluster config set log.retention.ms=3600000 min.insync.replicas=2\n" +
			"  sluice cluster config set --delete log.retention.ms",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newClusterConfigDescribeCmd(e), newClusterConfigGetCmd(e), newClusterConfigSetCmd(e))
	return cmd
}

// brokerConfigEntry is one key of a node's effective config.
type brokerConfigEntry struct {
	Key string `json:"key"`
	// Value is null for a sensitive key: the broker does not send it.
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Dynamic   bool    `json:"dynamic"` // settable with `cluster config set`
	Sensitive bool    `json:"sensitive,omitempty"`
}

type brokerConfigs struct {
	Node    int32               `json:"node"`
	Configs []brokerConfigEntry `json:"configs"`
}

// brokerConfigSourceName words DescribeConfigs' config_source. Unlike a
// topic's configs, a broker's tell the two dynamic layers apart: a
// per-broker value wins over the cluster-wide one.
func brokerConfigSourceName(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "topic"
	case kmsg.ConfigSourceDynamicBrokerConfig:
		return "dynamic-broker"
	case kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return "dynamic-cluster"
	case kmsg.ConfigSourceStaticBrokerConfig:
		return "static"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	case kmsg.ConfigSourceDynamicBrokerLoggerConfig:
		return "dynamic-logger"
	}
	return "unknown-" + strconv.Itoa(int(s))
}

// configNode is the --node flag: unset means the active controller. The
// active controller is a sensible default because it is a broker every
// client already knows, and in a cluster configured alike every node
// answers the same.
type configNode struct {
	id  int32
	set bool
}

func (n *configNode) register(cmd *cobra.Command, what string) {
	cmd.Flags().Int32Var(&n.id, "node", -1, what)
}

// resolve returns the node to ask: the one --node names, which must be a
// broker of the cluster, else the active controller, else (a controller
// that serves no clients) the broker with the lowest id.
func (n *configNode) resolve(ctx context.Context, cmd *cobra.Command, adm *kadm.Client) (int32, error) {
	n.set = cmd.Flags().Changed("node")
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return 0, fmt.Errorf("metadata: %w", err)
	}
	ids := make([]int32, 0, len(md.Brokers))
	for _, b := range md.Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	// A --node that is not a broker is refused here, with the list of the
	// brokers there are, rather than by the client library's error for a
	// node it has no address for.
	switch {
	case n.set && slices.Contains(ids, n.id):
		return n.id, nil
	case n.set:
		return 0, fmt.Errorf("node %d is not a broker of this cluster (brokers: %s)", n.id, joinNodeIDs(ids))
	case slices.Contains(ids, md.Controller):
		return md.Controller, nil
	case len(ids) > 0:
		return ids[0], nil
	}
	return 0, errors.New("metadata lists no brokers")
}

func joinNodeIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ", ")
}

// describeNodeConfigs asks node for its configs (all of them when names is
// empty). kgo sends a BROKER resource to the broker it names, the only one
// that can describe it.
func describeNodeConfigs(ctx context.Context, cl *kgo.Client, node int32, names ...string) ([]brokerConfigEntry, error) {
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeBroker
	res.ResourceName = strconv.Itoa(int(node))
	res.ConfigNames = names
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Resources = []kmsg.DescribeConfigsRequestResource{res}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("describe configs of node %d: %w", node, err)
	}
	if len(resp.Resources) != 1 {
		return nil, fmt.Errorf("describe configs of node %d: %d resources in the answer, want 1", node, len(resp.Resources))
	}
	r := resp.Resources[0]
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return nil, withBrokerMessage(fmt.Errorf("describe configs of node %d: %w", node, err), r.ErrorMessage)
	}
	// ReadOnly is Kafka's "not dynamically updatable": the inverse is what
	// `cluster config set` can change, which is what a user wants to know.
	out := make([]brokerConfigEntry, 0, len(r.Configs))
	for _, c := range r.Configs {
		out = append(out, brokerConfigEntry{Key: c.Name, Value: c.Value, Source: brokerConfigSourceName(c.Source),
			Dynamic: !c.ReadOnly, Sensitive: c.IsSensitive})
	}
	slices.SortFunc(out, func(a, b brokerConfigEntry) int { return cmp.Compare(a.Key, b.Key) })
	return out, nil
}

// withBrokerMessage appends the broker's error message (the reason behind
// INVALID_CONFIG, say) in brackets when it adds to err, as topic commands
// word their errors.
func withBrokerMessage(err error, msg *string) error {
	if msg == nil || *msg == "" || strings.Contains(err.Error(), *msg) {
		return err
	}
	return fmt.Errorf("%w (%s)", err, *msg)
}

// readNodeConfigs connects, picks the node (--node, else the active
// controller) and describes its configs (names, or all of them).
func readNodeConfigs(cmd *cobra.Command, e *clientEnv, node *configNode, names ...string) (int32, []brokerConfigEntry, error) {
	ctx, cl, id, done, err := configSession(cmd, e, node)
	if err != nil {
		return 0, nil, err
	}
	defer done()
	entries, err := describeNodeConfigs(ctx, cl, id, names...)
	return id, entries, err
}

// configSession connects, resolves --node and bounds the requests by
// --timeout; done releases it all.
func configSession(cmd *cobra.Command, e *clientEnv, node *configNode) (context.Context, *kgo.Client, int32, func(), error) {
	cl, err := e.client(cmd.Context())
	if err != nil {
		return nil, nil, 0, nil, err
	}
	ctx, cancel := e.requestContext(cmd.Context())
	done := func() { cancel(); cl.Close() }
	id, err := node.resolve(ctx, cmd, kadm.NewClient(cl))
	if err != nil {
		done()
		return nil, nil, 0, nil, err
	}
	return ctx, cl, id, done, nil
}

func newClusterConfigDescribeCmd(e *clientEnv) *cobra.Command {
	var node configNode
	cmd := &cobra.Command{
		Use:   "describe [--node N]",
		Short: "Show a node's effective config: every key with its value and source",
		Long: "Show every config of a node (default: the active controller) with its value\n" +
			"and where the value comes from: dynamic-broker (set for this node with\n" +
			"`cluster config set --node`), dynamic-cluster (set for every node with\n" +
			"`cluster config set`), static (the node's config file or --set flags) or\n" +
			"default. DYNAMIC says whether `cluster config set` can change the key.\n" +
			"Sensitive values are not sent by the broker and show as (hidden).",
		Example: "  sluice cluster config describe\n  sluice cluster config describe --node 2 --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			id, entries, err := readNodeConfigs(cmd, e, &node)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), brokerConfigs{Node: id, Configs: entries})
			}
			rows := make([][]string, 0, len(entries))
			for _, c := range entries {
				rows = append(rows, []string{c.Key, configValueText(c), c.Source, yesNo(c.Dynamic)})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Node %d\n", id)
			return printTable(cmd.OutOrStdout(), []string{"KEY", "VALUE", "SOURCE", "DYNAMIC"}, rows)
		},
	}
	node.register(cmd, "the node to describe (default: the active controller)")
	return cmd
}

func configValueText(c brokerConfigEntry) string {
	if c.Value == nil {
		if c.Sensitive {
			return "(hidden)"
		}
		return ""
	}
	return *c.Value
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newClusterConfigGetCmd(e *clientEnv) *cobra.Command {
	var node configNode
	cmd := &cobra.Command{
		Use:   "get KEY [--node N]",
		Short: "Print one config's effective value on a node",
		Long: "Print the value a node (default: the active controller) uses for KEY, alone on\n" +
			"a line for scripts; --json adds its source and whether it is dynamic. A key\n" +
			"the node does not know fails with exit 1.",
		Example: "  sluice cluster config get log.retention.ms\n  sluice cluster config get num.partitions --node 2 --json",
		Args:    exactlyOneConfigKey,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			id, entries, err := readNodeConfigs(cmd, e, &node, args[0])
			if err != nil {
				return err
			}
			// A broker answers a key it does not know by leaving it out,
			// not with an error, so absence is the "no such key" case.
			i := slices.IndexFunc(entries, func(c brokerConfigEntry) bool { return c.Key == args[0] })
			if i < 0 {
				return fmt.Errorf("node %d has no config %q (`sluice cluster config describe` lists them)", id, args[0])
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), struct {
					Node int32 `json:"node"`
					brokerConfigEntry
				}{id, entries[i]})
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), configValueText(entries[i]))
			return err
		},
	}
	node.register(cmd, "the node to ask (default: the active controller)")
	cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp // one key only
		}
		return completeConfigKeys(false, "")(cmd, args, toComplete)
	}
	return cmd
}

func exactlyOneConfigKey(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageErrorf("%s takes one config key, got %d arguments", cmd.CommandPath(), len(args))
	}
	return nil
}

// configChange is what `cluster config set` did, for --json.
type configChange struct {
	// Node is the node whose own config changed; null for the cluster-wide
	// default every node falls back to.
	Node    *int32            `json:"node"`
	Set     map[string]string `json:"set"`
	Deleted []string          `json:"deleted"`
}

func newClusterConfigSetCmd(e *clientEnv) *cobra.Command {
	var (
		node    configNode
		deletes []string
	)
	cmd := &cobra.Command{
		Use:   "set KEY=VALUE... [--delete KEY]... [--node N]",
		Short: "Change dynamic broker configs, cluster-wide or on one node",
		Long: "Set or delete dynamic broker configs with IncrementalAlterConfigs. Without\n" +
			"--node the change is to the cluster-wide default every node uses; with --node\n" +
			"it is to that node's own value, which wins over the cluster-wide one in\n" +
			"`describe`. --delete removes a dynamic value so the next layer (the node's\n" +
			"static config, else the default) applies again. Other keys keep their values.\n" +
			"Only dynamic keys can be changed (DYNAMIC in `describe`); the broker's\n" +
			"reason for refusing a key or a value is printed and the exit code is 1.",
		Example: "  sluice cluster config set log.retention.ms=3600000\n" +
			"  sluice cluster config set log.cleanup.policy=compact --node 2\n" +
			"  sluice cluster config set --delete log.retention.ms",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			change, alters, err := brokerConfigAlterations(args, deletes)
			if err != nil {
				return err
			}
			ctx, cl, id, done, err := configSession(cmd, e, &node)
			if err != nil {
				return err
			}
			defer done()
			// No node means the BROKER resource with an empty name, Kafka's
			// cluster-wide default; kadm sends that when nodes is empty.
			var nodes []int32
			target := "the cluster-wide default"
			if node.set {
				nodes, change.Node, target = []int32{id}, &id, "node "+strconv.Itoa(int(id))
			}
			if err := requireDeletesSet(ctx, cl, brokerLayer(id, node.set), change.Deleted); err != nil {
				return err
			}
			resps, err := kadm.NewClient(cl).AlterBrokerConfigs(ctx, alters, nodes...)
			if err != nil {
				return fmt.Errorf("alter configs of %s: %w", target, err)
			}
			// One resource per request, and IncrementalAlterConfigs is
			// atomic per resource: an error means none of the keys
			// changed, so there is no partial result to print.
			for _, r := range resps {
				if r.Err != nil {
					return withBrokerMessage(fmt.Errorf("alter configs of %s: %w", target, r.Err), &r.ErrMessage)
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), change)
			}
			printConfigChanges(cmd.OutOrStdout(), alters, target)
			return nil
		},
	}
	node.register(cmd, "change this node's own value instead of the cluster-wide default")
	cmd.Flags().StringArrayVar(&deletes, "delete", nil, "a dynamic key to remove, so the next layer applies (repeatable)")
	cmd.ValidArgsFunction = completeConfigKeys(true, "=")
	_ = cmd.RegisterFlagCompletionFunc("delete", completeConfigKeys(true, ""))
	return cmd
}

// printConfigChanges prints one line per key `cluster config set` changed.
func printConfigChanges(w io.Writer, alters []kadm.AlterConfig, target string) {
	for _, a := range alters {
		if a.Op == kadm.SetConfig {
			fmt.Fprintf(w, "set %s=%s on %s\n", a.Name, *a.Value, target)
		} else {
			fmt.Fprintf(w, "deleted %s from %s\n", a.Name, target)
		}
	}
}

// brokerConfigAlterations turns KEY=VALUE arguments and --delete keys into
// one IncrementalAlterConfigs operation per key, refusing before anything
// is sent what the broker would refuse as a malformed request.
func brokerConfigAlterations(sets, deletes []string) (configChange, []kadm.AlterConfig, error) {
	change := configChange{Set: map[string]string{}, Deleted: []string{}}
	if len(sets) == 0 && len(deletes) == 0 {
		return change, nil, usageErrorf("nothing to change: give KEY=VALUE arguments or --delete KEY")
	}
	var alters []kadm.AlterConfig
	seen := map[string]bool{}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return change, nil, usageErrorf("%q: want KEY=VALUE", s)
		}
		// Kafka refuses a request naming a key twice as INVALID_REQUEST;
		// saying so here names the key and sends nothing.
		if seen[k] {
			return change, nil, usageErrorf("%s is given twice", k)
		}
		seen[k] = true
		change.Set[k] = v
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(v)})
	}
	for _, k := range deletes {
		k = strings.TrimSpace(k)
		switch {
		case k == "" || strings.Contains(k, "="):
			return change, nil, usageErrorf("--delete %q: want a key, not KEY=VALUE", k)
		case seen[k]:
			return change, nil, usageErrorf("%s is both set and deleted", k)
		}
		seen[k] = true
		change.Deleted = append(change.Deleted, k)
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	return change, alters, nil
}

// completeConfigKeys offers broker config keys from this binary's own
// definitions, with no round trip to the cluster: every key Sluice knows,
// or only the dynamic ones, each followed by suffix ("=" for `set`, which
// then leaves the cursor after it, ready for the value).
func completeConfigKeys(dynamicOnly bool, suffix string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, def := range config.BrokerConfigDoc() {
			if !strings.HasPrefix(def.Name, toComplete) {
				continue
			}
			if _, dynamic := config.LookupBrokerConfig(def.Name); dynamicOnly && !dynamic {
				continue
			}
			out = append(out, def.Name+suffix)
		}
		directive := cobra.ShellCompDirectiveNoFileComp
		if suffix != "" {
			directive |= cobra.ShellCompDirectiveNoSpace
		}
		return out, directive
	}
}
