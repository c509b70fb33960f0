package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func newTopicCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics",
		Example: "  sluice topic create orders -p 3 -c retention.ms=86400000\n" +
			"  sluice topic list\n" +
			"  sluice topic describe orders --json",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	e := newClientEnv(cmd)
	cmd.AddCommand(
		newTopicCreateCmd(e),
		newTopicListCmd(e),
		newTopicDescribeCmd(e),
		newTopicDeleteCmd(e),
		newTopicAlterConfigCmd(e),
		newTopicAddPartitionsCmd(e),
		newTopicTrimCmd(e), newTopicOffsetsCmd(e),
	)
	return cmd
}

// topicConfigPairs parses repeated key=value flags into a map, naming the
// flag in the usage error. kadm takes *string because CreateTopics can
// send null for a config; a pair given here is never null, so key= sets
// the empty string, as kafka-topics --config key= does. Only the first
// '=' splits, so a value may contain '=' itself.
func topicConfigPairs(flag string, pairs []string) (map[string]*string, error) {
	out := make(map[string]*string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usageErrorf("%s %q: want key=value", flag, p)
		}
		out[strings.TrimSpace(k)] = kadm.StringPtr(v)
	}
	return out, nil
}

// topicError words a per-topic Kafka error for people: the topic, what was
// attempted, the error's name and the broker's message when it sent one.
func topicError(topic, action string, err error, brokerMsg string) error {
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("topic %q does not exist (%w)", topic, err)
	}
	// The broker's message often says more than the code's generic text
	// (which limit, which config); it is added unless the error text
	// already carries it, so nothing is printed twice.
	if brokerMsg != "" && !strings.Contains(err.Error(), brokerMsg) {
		return fmt.Errorf("%s topic %q: %w (%s)", action, topic, err, brokerMsg)
	}
	return fmt.Errorf("%s topic %q: %w", action, topic, err)
}

// topicCreated is one named topic's line in `topic create --json`: what
// was created, or, for a topic that was not, the error alone (the other
// fields are then zero and left out, so a script tells the two apart by
// "error").
type topicCreated struct {
	Topic             string `json:"topic"`
	ID                string `json:"id,omitempty"`
	Partitions        int32  `json:"partitions,omitempty"`
	ReplicationFactor int16  `json:"replication_factor,omitempty"`
	Error             string `json:"error,omitempty"`
	ErrorCode         string `json:"error_code,omitempty"`
}

func newTopicCreateCmd(e *clientEnv) *cobra.Command {
	var (
		partitions int32
		replicas   int16
		configs    []string
	)
	cmd := &cobra.Command{
		Use:   "create TOPIC...",
		Short: "Create topics",
		Long: "Create topics. Without -p or -r the broker's num.partitions and\n" +
			"default.replication.factor apply. -c sets a topic config (Kafka's key names,\n" +
			"see docs/configuration.md) and may be repeated.",
		Example: "  sluice topic create orders\n" +
			"  sluice topic create orders -p 6 -c retention.ms=3600000 -c cleanup.policy=delete",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			cfg, err := topicConfigPairs("-c", configs)
			if err != nil {
				return err
			}
			ctx, adm, done, err := e.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			// -1 for either lets the broker apply num.partitions and
			// default.replication.factor (CreateTopics v4+, KIP-464), so
			// the CLI never guesses another cluster's defaults.
			resps, err := adm.CreateTopics(ctx, partitions, replicas, cfg, topics...)
			if err != nil {
				return fmt.Errorf("create topics: %w", err)
			}
			created := []topicCreated{} // every name, in the order given
			var errs []error
			for _, t := range topics {
				r := resps[t]
				if r.Err != nil {
					err := topicError(t, "create", r.Err, r.ErrMessage)
					errs = append(errs, err)
					created = append(created, topicCreated{Topic: t, Error: err.Error(), ErrorCode: kafkaErrorCode(err)})
					continue
				}
				created = append(created, topicCreated{Topic: t, ID: kafkaTopicID(r.ID), Partitions: r.NumPartitions, ReplicationFactor: r.ReplicationFactor})
			}
			if err := printTopicsCreated(cmd, asJSON, created); err != nil {
				return err
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().Int32VarP(&partitions, "partitions", "p", -1, "number of partitions (default: the broker's num.partitions)")
	cmd.Flags().Int16VarP(&replicas, "replication-factor", "r", -1, "replicas per partition (default: the broker's default.replication.factor)")
	cmd.Flags().StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable)")
	return cmd
}

// printTopicsCreated prints every named topic with --json, the failed ones
// with their error; as text only the created ones, since the failures
// are on stderr.
func printTopicsCreated(cmd *cobra.Command, asJSON bool, created []topicCreated) error {
	if asJSON {
		return printJSON(cmd.OutOrStdout(), created)
	}
	for _, c := range created {
		if c.Error != "" {
			continue
		}
		fmt.Fprintf(cmd.OutOrStdout(), "created topic %s (%d partitions, replication factor %d)\n", c.Topic, c.Partitions, c.ReplicationFactor)
	}
	return nil
}

type topicListed struct {
	Topic             string `json:"topic"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal"`
}

func newTopicListCmd(e *clientEnv) *cobra.Command {
	var internal bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics with their partition counts",
		Example: "  sluice topic list\n  sluice topic list --internal --json",
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
			// Internal topics are hidden by default, as in kafka-topics
			// --list: __consumer_offsets appears once groups exist and is
			// rarely what a user is looking for.
			list := adm.ListTopics
			if internal {
				list = adm.ListTopicsWithInternal
			}
			details, err := list(ctx)
			if err != nil {
				return fmt.Errorf("list topics: %w", err)
			}
			listed := []topicListed{}
			for _, d := range details.Sorted() {
				listed = append(listed, topicListed{Topic: d.Topic, Partitions: len(d.Partitions),
					ReplicationFactor: d.Partitions.NumReplicas(), Internal: d.IsInternal})
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), listed)
			}
			rows := make([][]string, 0, len(listed))
			for _, l := range listed {
				rows = append(rows, []string{l.Topic, strconv.Itoa(l.Partitions), strconv.Itoa(l.ReplicationFactor)})
			}
			return printTable(cmd.OutOrStdout(), []string{"TOPIC", "PARTITIONS", "REPLICAS"}, rows)
		},
	}
	cmd.Flags().BoolVar(&internal, "internal", false, "include internal topics such as __consumer_offsets")
	return cmd
}

func newTopicDeleteCmd(e *clientEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete TOPIC...",
		Short:   "Delete topics and all their records",
		Example: "  sluice topic delete orders\n  sluice topic delete t1 t2 --json",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			ctx, adm, done, err := e.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resps, err := adm.DeleteTopics(ctx, topics...)
			if err != nil {
				return fmt.Errorf("delete topics: %w", err)
			}
			deleted := []string{}
			var failed []nameFailure
			for _, t := range topics {
				r := resps[t]
				if r.Err != nil {
					failed = append(failed, failedTopic(t, topicError(t, "delete", r.Err, r.ErrMessage)))
					continue
				}
				deleted = append(deleted, t)
			}
			return printDeleted(cmd, asJSON, "topic", deleted, failed)
		},
	}
	cmd.ValidArgsFunction = completeTopics(e)
	return cmd
}

func newTopicAlterConfigCmd(e *clientEnv) *cobra.Command {
	var sets, deletes []string
	cmd := &cobra.Command{
		Use:   "alter-config TOPIC --set key=value... --delete key...",
		Short: "Set or remove a topic's configs",
		Long: "Change a topic's configs incrementally: --set overrides a key, --delete removes\n" +
			"the override so the broker default applies again. Other keys keep their values.",
		Example: "  sluice topic alter-config orders --set retention.ms=3600000\n" +
			"  sluice topic alter-config orders --delete retention.ms",
		Args: exactlyOneTopic,
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			alters, err := topicAlterations(sets, deletes)
			if err != nil {
				return err
			}
			cl, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := e.requestContext(cmd.Context())
			defer cancel()
			if err := requireDeletesSet(ctx, cl, topicLayer(topic), deletes); err != nil {
				return err
			}
			// IncrementalAlterConfigs (KIP-339) changes only the keys
			// named, where the older AlterConfigs would drop every
			// override not resent. It is atomic per topic, so the first
			// error below means nothing changed.
			resps, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, alters, topic)
			if err != nil {
				return fmt.Errorf("alter topic %q configs: %w", topic, err)
			}
			for _, r := range resps {
				if r.Err != nil {
					return topicError(topic, "alter configs of", r.Err, r.ErrMessage)
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"topic": topic, "set": sets, "deleted": deletes})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "altered topic %s: %d set, %d deleted\n", topic, len(sets), len(deletes))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&sets, "set", nil, "key=value to set (repeatable)")
	cmd.Flags().StringArrayVar(&deletes, "delete", nil, "key to reset to the broker default (repeatable)")
	cmd.ValidArgsFunction = completeTopics(e)
	return cmd
}

// topicAlterations turns --set and --delete into one operation per key.
// Nothing to change is a usage error: an empty IncrementalAlterConfigs
// would succeed and mislead the user into thinking something changed.
func topicAlterations(sets, deletes []string) ([]kadm.AlterConfig, error) {
	if len(sets) == 0 && len(deletes) == 0 {
		return nil, usageErrorf("nothing to change: give --set key=value or --delete key")
	}
	setMap, err := topicConfigPairs("--set", sets)
	if err != nil {
		return nil, err
	}
	// Sorted: map order is random, and the request (and which key an
	// error names first) should be the same on every run.
	var alters []kadm.AlterConfig
	keys := make([]string, 0, len(setMap))
	for k := range setMap {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: setMap[k]})
	}
	for _, k := range deletes {
		// A user who types --delete k=v probably meant --set; deleting
		// a key literally named "k=v" would silently do nothing.
		if strings.Contains(k, "=") {
			return nil, usageErrorf("--delete %q: want a key, not key=value", k)
		}
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	return alters, nil
}

func newTopicAddPartitionsCmd(e *clientEnv) *cobra.Command {
	var o addPartitionsOptions
	cmd := &cobra.Command{
		Use:   "add-partitions TOPIC (--total N | --add N)",
		Short: "Add partitions to a topic",
		Long: "Add partitions to a topic: --total N grows it to N partitions in all, --add N\n" +
			"adds N more; give exactly one. (There is no -n: it is a total in some tools and\n" +
			"an increment in others, such as rpk.) Partitions cannot be removed, so a --total\n" +
			"below the current count fails. Keyed records written after the change may hash\n" +
			"to a different partition.",
		Example: "  sluice topic add-partitions orders --total 6\n" +
			"  sluice topic add-partitions orders --add 2 --json",
		Args: exactlyOneTopic,
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			if err := o.check(cmd); err != nil {
				return err
			}
			ctx, adm, done, err := e.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			total, err := o.newTotal(ctx, adm, topic)
			if err != nil {
				return err
			}
			// CreatePartitions takes the new total, never an increment
			// (KIP-195). Two --add runs at once can compute the same total;
			// the second then fails with INVALID_PARTITIONS instead of
			// adding twice, which is the safer way round.
			resps, err := adm.UpdatePartitions(ctx, total, topic)
			if err != nil {
				return fmt.Errorf("add partitions to topic %q: %w", topic, err)
			}
			if r := resps[topic]; r.Err != nil {
				return topicError(topic, "add partitions to", r.Err, r.ErrMessage)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"topic": topic, "partitions": total})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "topic %s now has %d partitions\n", topic, total)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.total, "total", 0, "the partition count after the change")
	fs.IntVar(&o.add, "add", 0, "how many partitions to add")
	// -n is kept, hidden, only to refuse it with a message naming both
	// flags: a plain "unknown shorthand flag" would not say what to type.
	fs.StringVarP(&o.removedN, "removed-n", "n", "", "")
	_ = fs.MarkHidden("removed-n")
	cmd.ValidArgsFunction = completeTopics(e)
	return cmd
}

// addPartitionsOptions are add-partitions' flags: exactly one of total and
// add.
type addPartitionsOptions struct {
	total, add int
	removedN   string
}

// check validates the flags before anything is sent; errors are usage
// errors.
func (o *addPartitionsOptions) check(cmd *cobra.Command) error {
	fs := cmd.Flags()
	totalSet, addSet := fs.Changed("total"), fs.Changed("add")
	switch {
	case fs.Changed("removed-n"):
		return usageErrorf("-n %s: -n is ambiguous (a total here once, an increment in rpk) and is gone; "+
			"give --total N for the partition count after, or --add N for how many to add", o.removedN)
	case totalSet == addSet:
		return usageErrorf("give exactly one of --total N (the partition count after) or --add N (how many to add)")
	case totalSet && o.total < 1:
		return usageErrorf("--total %d: want the new partition count, at least 1", o.total)
	case addSet && o.add < 1:
		return usageErrorf("--add %d: want how many partitions to add, at least 1", o.add)
	}
	return nil
}

// newTotal is the partition count to ask for. It reads the current count
// first: --add needs it, and a --total below it is refused here in words,
// rather than with the broker's INVALID_PARTITIONS.
func (o *addPartitionsOptions) newTotal(ctx context.Context, adm *kadm.Client, topic string) (int, error) {
	d, err := describeOne(ctx, adm, topic)
	if err != nil {
		return 0, err
	}
	current := len(d.Partitions)
	if o.add > 0 {
		return current + o.add, nil
	}
	if o.total < current {
		return 0, fmt.Errorf("topic %q has %d partitions; --total %d would remove partitions, which Kafka cannot do", topic, current, o.total)
	}
	return o.total, nil
}

// describeOne runs a metadata request for one topic and fails with a clear
// message when it does not exist.
//
// It lists with internal topics so that __consumer_offsets can be grown
// or described like any other topic when an operator names it.
func describeOne(ctx context.Context, adm *kadm.Client, topic string) (kadm.TopicDetail, error) {
	details, err := adm.ListTopicsWithInternal(ctx, topic)
	if err != nil {
		return kadm.TopicDetail{}, fmt.Errorf("describe topic %q: %w", topic, err)
	}
	// A topic the broker did not mention at all and one it reported with
	// UNKNOWN_TOPIC_OR_PARTITION read the same to the user. kadm asks
	// without auto-creation, so describing never creates a topic.
	d, ok := details[topic]
	if !ok {
		return d, topicError(topic, "describe", kerr.UnknownTopicOrPartition, "")
	}
	if d.Err != nil {
		return d, topicError(topic, "describe", d.Err, "")
	}
	return d, nil
}
