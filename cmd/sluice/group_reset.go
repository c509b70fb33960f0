package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// resetTarget says where reset-offsets moves a group: exactly one of its
// modes, from the command line.
type resetTarget struct {
	earliest, latest bool
	offset           int64
	timestamp        string
	shiftBy          int64
	flags            *cobra.Command
}

func (r *resetTarget) mode() (string, error) {
	set := []string{}
	for _, name := range []string{"to-earliest", "to-latest", "to-offset", "to-timestamp", "shift-by"} {
		if r.flags.Flags().Changed(name) {
			set = append(set, "--"+name)
		}
	}
	if len(set) != 1 {
		return "", usageErrorf("give exactly one of --to-earliest, --to-latest, --to-offset, --to-timestamp, --shift-by (got %v)", set)
	}
	return set[0][2:], nil
}

type offsetReset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Old       int64  `json:"old_offset"` // -1: nothing was committed
	New       int64  `json:"new_offset"`
}

func newGroupResetOffsetsCmd(e *clientEnv) *cobra.Command {
	var (
		topics []string
		dryRun bool
		target resetTarget
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP --topic TOPIC[:P,P] (--to-earliest|--to-latest|--to-offset N|--to-timestamp T|--shift-by N)",
		Short: "Move a group's committed offsets",
		Long: "Move a consumer group's committed offsets, as kafka-consumer-groups --reset-offsets\n" +
			"does. Refused while the group has members: stop its consumers first. New offsets\n" +
			"are kept within the log (log start to log end). --to-timestamp takes milliseconds\n" +
			"since the epoch or RFC 3339 and picks the first record at or after it. --shift-by\n" +
			"moves from the committed offset (from the log start where nothing is committed).\n" +
			"--dry-run prints the plan and changes nothing.",
		Example: "  sluice group reset-offsets billing --topic orders --to-earliest\n" +
			"  sluice group reset-offsets billing --topic orders:0,2 --shift-by -100 --dry-run\n" +
			"  sluice group reset-offsets billing --topic orders --to-timestamp 2024-05-01T00:00:00Z",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGroupReset(cmd, e, args[0], topics, dryRun, target)
		},
	}
	target.flags = cmd
	cmd.Flags().StringArrayVar(&topics, "topic", nil, "TOPIC or TOPIC:P,P to reset (repeatable)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the new offsets without committing them")
	cmd.Flags().BoolVar(&target.earliest, "to-earliest", false, "move to the log start")
	cmd.Flags().BoolVar(&target.latest, "to-latest", false, "move to the log end")
	cmd.Flags().Int64Var(&target.offset, "to-offset", 0, "move to offset N")
	cmd.Flags().StringVar(&target.timestamp, "to-timestamp", "", "move to the first record at or after this time")
	cmd.Flags().Int64Var(&target.shiftBy, "shift-by", 0, "move by N (negative: back)")
	cmd.ValidArgsFunction = completeGroups(e)
	return cmd
}

// runGroupReset plans the reset of group's offsets and commits it unless
// dryRun.
func runGroupReset(cmd *cobra.Command, e *clientEnv, group string, topics []string, dryRun bool, target resetTarget) error {
	asJSON, err := e.jsonOutput()
	if err != nil {
		return err
	}
	mode, err := target.mode()
	if err != nil {
		return err
	}
	if len(topics) == 0 {
		return usageErrorf("--topic is required")
	}
	var tsMillis int64
	if mode == "to-timestamp" {
		spec, err := parseOffsetSpec("@" + target.timestamp)
		if err != nil {
			return usageErrorf("--to-timestamp %q: want milliseconds since the epoch or RFC 3339", target.timestamp)
		}
		tsMillis = spec.n
	}
	ctx, adm, done, err := e.adminSession(cmd.Context())
	if err != nil {
		return err
	}
	defer done()
	if err := requireInactiveGroup(ctx, adm, group); err != nil {
		return err
	}
	plan, err := planReset(ctx, adm, group, topics, mode, target, tsMillis)
	if err != nil {
		return err
	}
	if !dryRun {
		if err := commitReset(ctx, adm, group, plan); err != nil {
			return err
		}
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), map[string]any{"group": group, "dry_run": dryRun, "offsets": plan})
	}
	rows := make([][]string, 0, len(plan))
	for _, r := range plan {
		old := ""
		if r.Old >= 0 {
			old = strconv.FormatInt(r.Old, 10)
		}
		rows = append(rows, []string{r.Topic, strconv.Itoa(int(r.Partition)), old, strconv.FormatInt(r.New, 10)})
	}
	if err := printTable(cmd.OutOrStdout(), []string{"TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET"}, rows); err != nil {
		return err
	}
	if dryRun {
		fmt.Fprintln(cmd.ErrOrStderr(), "sluice: dry run: nothing was changed")
	}
	return nil
}

// requireInactiveGroup refuses a reset while consumers are in the group:
// they would overwrite the new offsets with their next commit.
func requireInactiveGroup(ctx context.Context, adm *kadm.Client, group string) error {
	var described kadm.DescribedGroups
	err := groupRetry(ctx, func() (err error) {
		described, err = adm.DescribeGroups(ctx, group)
		if err == nil {
			err = described.Error()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("describe group %q: %w", group, err)
	}
	d := described[group]
	if len(d.Members) > 0 || (d.State != "Empty" && d.State != "Dead" && d.State != "") {
		return fmt.Errorf("group %q is %s with %d member(s): stop its consumers first", group, d.State, len(d.Members))
	}
	return nil
}

// planReset works out each partition's new offset, clamped to the log.
func planReset(ctx context.Context, adm *kadm.Client, group string, specs []string, mode string, target resetTarget, tsMillis int64) ([]offsetReset, error) {
	var plan []offsetReset
	for _, spec := range specs {
		topic, only, err := groupPartitions(spec)
		if err != nil {
			return nil, err
		}
		if _, err := describeOne(ctx, adm, topic); err != nil {
			return nil, err
		}
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err != nil {
			return nil, fmt.Errorf("list log start offsets of %q: %w", topic, err)
		}
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return nil, fmt.Errorf("list end offsets of %q: %w", topic, err)
		}
		var atTime kadm.ListedOffsets
		if mode == "to-timestamp" {
			if atTime, err = adm.ListOffsetsAfterMilli(ctx, tsMillis, topic); err != nil {
				return nil, fmt.Errorf("list offsets of %q at %d: %w", topic, tsMillis, err)
			}
		}
		var committed kadm.OffsetResponses
		err = groupRetry(ctx, func() (err error) {
			committed, err = adm.FetchOffsetsForTopics(ctx, group, topic)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("fetch committed offsets of group %q: %w", group, err)
		}
		partitions := slices.Sorted(maps.Keys(starts[topic]))
		for _, p := range partitions {
			s := starts[topic][p]
			if only != nil && !slices.Contains(only, s.Partition) {
				continue
			}
			e, _ := ends.Lookup(topic, s.Partition)
			r := offsetReset{Topic: topic, Partition: s.Partition, Old: -1}
			if c, ok := committed.Lookup(topic, s.Partition); ok && c.Err == nil && c.At >= 0 {
				r.Old = c.At
			}
			r.New = resetOffset(mode, target, r.Old, s.Offset, e.Offset, atTime, topic, p)
			plan = append(plan, r)
		}
		for _, p := range only {
			if _, ok := starts.Lookup(topic, p); !ok {
				return nil, fmt.Errorf("topic %q has no partition %d", topic, p)
			}
		}
	}
	return plan, nil
}

func commitReset(ctx context.Context, adm *kadm.Client, group string, plan []offsetReset) error {
	offsets := kadm.Offsets{}
	for _, r := range plan {
		offsets.Add(kadm.Offset{Topic: r.Topic, Partition: r.Partition, At: r.New, LeaderEpoch: -1})
	}
	var resps kadm.OffsetResponses
	err := groupRetry(ctx, func() (err error) {
		resps, err = adm.CommitOffsets(ctx, group, offsets)
		if err == nil {
			err = resps.Error()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("commit offsets for group %q: %w", group, err)
	}
	return nil
}

// resetOffset is one partition's new offset for mode, clamped to the log
// [logStart, logEnd]; old is the committed offset or -1.
func resetOffset(mode string, target resetTarget, old, logStart, logEnd int64, atTime kadm.ListedOffsets, topic string, partition int32) int64 {
	var next int64
	switch mode {
	case "to-earliest":
		next = logStart
	case "to-latest":
		next = logEnd
	case "to-offset":
		next = target.offset
	case "to-timestamp":
		next = logEnd
		if t, ok := atTime.Lookup(topic, partition); ok && t.Err == nil && t.Offset >= 0 {
			next = t.Offset
		}
	case "shift-by":
		base := old
		if base < 0 {
			base = logStart
		}
		next = base + target.shiftBy
	}
	return min(max(next, logStart), logEnd)
}
