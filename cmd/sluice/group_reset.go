package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// resetTarget says where reset-offsets moves a group: exactly one of its
// modes, from the command line. flags is kept to ask which flags were
// given: a zero --to-offset or --shift-by is a valid target, so the values
// alone cannot tell.
type resetTarget struct {
	earliest, latest bool
	offset           int64
	timestamp        string
	shiftBy          int64
	fromFile         string // a CSV of topic,partition,offset
	toGroup          string // the group whose commits to copy
	flags            *cobra.Command
}

// resetModes are the target flags, of which exactly one is given. They are
// kafka-consumer-groups' own names (--to-earliest, --shift-by, ...), so a
// command line copied from Kafka's docs works after the group name; the
// mode string is the flag name without its dashes.
var resetModes = []string{"to-earliest", "to-latest", "to-offset", "to-timestamp", "shift-by", "from-file", "to-group"}

// mode is the one target flag given. All the given ones are named in the
// error, since a user who gave two needs to see which.
func (r *resetTarget) mode() (string, error) {
	set := []string{}
	for _, name := range resetModes {
		if r.flags.Flags().Changed(name) {
			set = append(set, "--"+name)
		}
	}
	if len(set) != 1 {
		return "", usageErrorf("give exactly one of --to-earliest, --to-latest, --to-offset, --to-timestamp, --shift-by, --from-file, --to-group (got %v)", set)
	}
	return set[0][2:], nil
}

// resetScope is what reset-offsets resets: --topic specs, --all-topics,
// or the partitions a --from-file names.
type resetScope struct {
	specs     []string
	allTopics bool
}

// check refuses a scope that does not fit mode: --from-file names its own
// partitions, every other mode needs --topic or --all-topics.
func (s resetScope) check(mode string) error {
	given := len(s.specs) > 0 || s.allTopics
	switch {
	case mode == "from-file" && given:
		return usageErrorf("--from-file names its own partitions: drop --topic and --all-topics")
	case mode == "from-file":
		return nil
	case len(s.specs) > 0 && s.allTopics:
		return usageErrorf("--topic and --all-topics conflict: choose one")
	case !given:
		return usageErrorf("--topic or --all-topics is required")
	}
	return nil
}

// offsetReset is one partition's line in the plan, as printed and as
// --json shows it.
type offsetReset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Old       int64  `json:"old_offset"` // -1: nothing was committed
	New       int64  `json:"new_offset"`
	// Error is set when the broker refused this partition's commit while
	// others went through: OffsetCommit answers per partition, so a reset
	// can half succeed, and the output must show which half.
	Error string `json:"error,omitempty"`
}

func newGroupResetOffsetsCmd(e *clientEnv) *cobra.Command {
	var (
		scope  resetScope
		dryRun bool
		target resetTarget
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP (--topic TOPIC[:P,P]... | --all-topics) (--to-earliest|--to-latest|--to-offset N|--to-timestamp T|--shift-by N|--to-group OTHER) | --from-file F",
		Short: "Move a group's committed offsets",
		Long: "Move a consumer group's committed offsets, as kafka-consumer-groups --reset-offsets\n" +
			"does. Refused while the group has members: stop its consumers first. New offsets\n" +
			"are kept within the log (log start to log end). --to-timestamp takes milliseconds\n" +
			"since the epoch or RFC 3339 and picks the first record at or after it. --shift-by\n" +
			"moves from the committed offset (from the log start where nothing is committed).\n" +
			"--to-group copies another group's committed offsets; partitions it has none for\n" +
			"are left as they are. --from-file reads CSV lines topic,partition,offset (as\n" +
			"kafka-consumer-groups --export writes them; group,topic,partition,offset lines\n" +
			"are taken for this group only) and names the partitions itself. --all-topics\n" +
			"means every topic the group has commits for (with --to-group: the other group).\n" +
			"--dry-run prints the plan and changes nothing. On a share group (KIP-932) the\n" +
			"offsets moved are its share partitions' start offsets (AlterShareGroupOffsets),\n" +
			"and --all-topics means every topic it has them for.",
		Example: "  sluice group reset-offsets billing --topic orders --to-earliest\n" +
			"  sluice group reset-offsets billing --topic orders:0,2 --shift-by -100 --dry-run\n" +
			"  sluice group reset-offsets billing --topic orders --to-timestamp 2024-05-01T00:00:00Z\n" +
			"  sluice group reset-offsets billing --all-topics --to-latest\n" +
			"  sluice group reset-offsets billing-v2 --all-topics --to-group billing\n" +
			"  sluice group reset-offsets billing --from-file offsets.csv --json",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGroupReset(cmd, e, args[0], scope, dryRun, target)
		},
	}
	target.flags = cmd
	cmd.Flags().StringArrayVar(&scope.specs, "topic", nil, "TOPIC or TOPIC:P,P to reset (repeatable)")
	cmd.Flags().BoolVar(&scope.allTopics, "all-topics", false, "reset every topic the group has committed offsets for")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the new offsets without committing them")
	cmd.Flags().BoolVar(&target.earliest, "to-earliest", false, "move to the log start")
	cmd.Flags().BoolVar(&target.latest, "to-latest", false, "move to the log end")
	cmd.Flags().Int64Var(&target.offset, "to-offset", 0, "move to offset N")
	cmd.Flags().StringVar(&target.timestamp, "to-timestamp", "", "move to the first record at or after this time")
	cmd.Flags().Int64Var(&target.shiftBy, "shift-by", 0, "move by N (negative: back)")
	cmd.Flags().StringVar(&target.fromFile, "from-file", "", "move to the offsets in this CSV file (topic,partition,offset)")
	cmd.Flags().StringVar(&target.toGroup, "to-group", "", "move to the offsets another group has committed")
	cmd.ValidArgsFunction = completeGroups(e)
	return cmd
}

// resetRequest is a reset-offsets command line, checked.
type resetRequest struct {
	group    string
	mode     string
	target   resetTarget
	scope    resetScope
	tsMillis int64
	// fileOffsets are --from-file's offsets by topic and partition.
	fileOffsets map[string]map[int32]int64
	// share: the group is a share group (KIP-932), whose "offsets" are
	// its share partitions' start offsets, set with AlterShareGroupOffsets.
	share bool
}

// runGroupReset plans the reset of group's offsets and commits it unless
// dryRun.
func runGroupReset(cmd *cobra.Command, e *clientEnv, group string, scope resetScope, dryRun bool, target resetTarget) error {
	asJSON, err := e.jsonOutput()
	if err != nil {
		return err
	}
	req, err := checkReset(group, scope, target)
	if err != nil {
		return err
	}
	ctx, adm, done, err := e.adminSession(cmd.Context())
	if err != nil {
		return err
	}
	defer done()
	if err := requireInactiveGroup(ctx, adm, group); err != nil {
		return err
	}
	if req.share, err = isShareGroup(ctx, adm, group); err != nil {
		return err
	}
	plan, unchanged, err := planReset(ctx, adm, req)
	if err != nil {
		return err
	}
	for _, tp := range unchanged {
		fmt.Fprintf(cmd.ErrOrStderr(), "sluice: group %q has no commit for %s/%d: left as it is\n", target.toGroup, tp.topic, tp.partition)
	}
	var failed []error
	commit := commitReset
	if req.share {
		commit = commitShareReset
	}
	if !dryRun && len(plan) > 0 {
		if failed, err = commit(ctx, adm, group, plan); err != nil {
			return err
		}
	}
	if err := printResetPlan(cmd, asJSON, group, dryRun, plan); err != nil {
		return err
	}
	if dryRun {
		fmt.Fprintln(cmd.ErrOrStderr(), "sluice: dry run: nothing was changed")
	}
	return errors.Join(failed...)
}

// printResetPlan prints the offsets set (or, dry, to be set); an ERROR
// column appears only when some partition's commit failed.
func printResetPlan(cmd *cobra.Command, asJSON bool, group string, dryRun bool, plan []offsetReset) error {
	if asJSON {
		return printJSON(cmd.OutOrStdout(), map[string]any{"group": group, "dry_run": dryRun, "offsets": plan})
	}
	headers := []string{"TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET"}
	withErrors := slices.ContainsFunc(plan, func(r offsetReset) bool { return r.Error != "" })
	if withErrors {
		headers = append(headers, "ERROR")
	}
	rows := make([][]string, 0, len(plan))
	for _, r := range plan {
		old := ""
		if r.Old >= 0 {
			old = strconv.FormatInt(r.Old, 10)
		}
		row := []string{r.Topic, strconv.Itoa(int(r.Partition)), old, strconv.FormatInt(r.New, 10)}
		if withErrors {
			row = append(row, r.Error)
		}
		rows = append(rows, row)
	}
	return printTable(cmd.OutOrStdout(), headers, rows)
}

// checkReset checks the command line without the cluster: every error is
// a usage error.
func checkReset(group string, scope resetScope, target resetTarget) (resetRequest, error) {
	req := resetRequest{group: group, scope: scope, target: target}
	var err error
	if req.mode, err = target.mode(); err != nil {
		return req, err
	}
	if err := scope.check(req.mode); err != nil {
		return req, err
	}
	// Parse every spec now, before the cluster is asked anything, so a
	// typo in the last --topic is a usage error (exit 2), not a failure
	// after half the offsets were listed.
	for _, spec := range scope.specs {
		if _, _, err := groupPartitions(spec); err != nil {
			return req, err
		}
	}
	switch req.mode {
	case "to-timestamp":
		if req.tsMillis, err = parseTimestamp("--to-timestamp", target.timestamp); err != nil {
			return req, err
		}
	case "to-group":
		// Copying a group onto itself would be a no-op that still
		// requires the group to be stopped: certainly a typo.
		if target.toGroup == "" || target.toGroup == group {
			return req, usageErrorf("--to-group %q: want another group's name", target.toGroup)
		}
	case "from-file":
		if req.fileOffsets, err = readResetFile(target.fromFile, group); err != nil {
			return req, err
		}
	}
	return req, nil
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
	// Empty (no members, commits kept) and Dead or "" (no such group yet:
	// a reset may create its commits) are the states Kafka's tool
	// accepts; any other state has or is about to have members.
	d := described[group]
	if len(d.Members) > 0 || (d.State != "Empty" && d.State != "Dead" && d.State != "") {
		return fmt.Errorf("group %q is %s with %d member(s): stop its consumers first", group, d.State, len(d.Members))
	}
	return nil
}

// planReset works out each partition's new offset, clamped to the log, and
// lists the partitions --to-group leaves alone for want of a commit there.
func planReset(ctx context.Context, adm *kadm.Client, req resetRequest) ([]offsetReset, []topicPartition, error) {
	// The old offsets are read for every mode: they are the base of
	// --shift-by, the topics of --all-topics, and the OLD-OFFSET column
	// that lets a user check a dry run before committing.
	committed, err := groupPositions(ctx, adm, req.group, req.share)
	if err != nil {
		return nil, nil, err
	}
	given := req.fileOffsets
	if req.mode == "to-group" {
		otherShare, err := isShareGroup(ctx, adm, req.target.toGroup)
		if err != nil {
			return nil, nil, err
		}
		if given, err = groupPositions(ctx, adm, req.target.toGroup, otherShare); err != nil {
			return nil, nil, err
		}
		if len(given) == 0 {
			return nil, nil, fmt.Errorf("group %q has no committed offsets to copy", req.target.toGroup)
		}
	}
	scopes, err := resetScopes(req, committed, given)
	if err != nil {
		return nil, nil, err
	}
	plan, unchanged := []offsetReset{}, []topicPartition{}
	for _, sc := range scopes {
		bounds, err := resetBounds(ctx, adm, sc, req)
		if err != nil {
			return nil, nil, err
		}
		for _, b := range bounds {
			r := offsetReset{Topic: sc.topic, Partition: b.partition, Old: -1}
			if c, ok := committed[sc.topic][b.partition]; ok {
				r.Old = c
			}
			// given (file or other group) names partitions one by one; a
			// partition it does not mention keeps its commit rather than
			// being moved to some default, as Kafka's tool does.
			want := b.atTime
			if given != nil {
				var ok bool
				if want, ok = given[sc.topic][b.partition]; !ok {
					unchanged = append(unchanged, topicPartition{sc.topic, b.partition})
					continue
				}
			}
			r.New = resetOffset(req.mode, req.target, r.Old, b.logStart, b.highWatermark, want)
			plan = append(plan, r)
		}
	}
	return plan, unchanged, nil
}

// topicScope is one topic to reset and its chosen partitions (nil: all).
type topicScope struct {
	topic string
	only  []int32
}

// resetScopes lists the topics to reset: those of --topic, of --all-topics
// (the group's commits, or with --to-group the other group's), or of the
// file.
func resetScopes(req resetRequest, committed, given map[string]map[int32]int64) ([]topicScope, error) {
	var scopes []topicScope
	switch {
	case req.mode == "from-file":
		for _, topic := range slices.Sorted(maps.Keys(given)) {
			scopes = append(scopes, topicScope{topic, slices.Sorted(maps.Keys(given[topic]))})
		}
	case req.scope.allTopics:
		from, whose := committed, req.group
		if req.mode == "to-group" {
			from, whose = given, req.target.toGroup
		}
		if len(from) == 0 {
			return nil, fmt.Errorf("group %q has no committed offsets: --all-topics finds no topic to reset", whose)
		}
		for _, topic := range slices.Sorted(maps.Keys(from)) {
			scopes = append(scopes, topicScope{topic, nil})
		}
	default:
		for _, spec := range req.scope.specs {
			topic, only, _ := groupPartitions(spec) // checked in checkReset
			scopes = append(scopes, topicScope{topic, only})
		}
	}
	return scopes, nil
}

// resetBound is one partition's log and, for --to-timestamp, the first
// offset at or after the time.
type resetBound struct {
	partition                       int32
	logStart, highWatermark, atTime int64
}

// resetBounds lists one topic's log bounds. Unlike describe, a partition
// whose offsets cannot be listed fails the reset: clamping to a log we
// cannot see could move the group to an offset that is not there.
func resetBounds(ctx context.Context, adm *kadm.Client, sc topicScope, req resetRequest) ([]resetBound, error) {
	partitions, err := topicPartitionsIn(ctx, adm, sc.topic, sc.only)
	if err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(ctx, sc.topic)
	if err != nil {
		return nil, fmt.Errorf("list log start offsets of %q: %w", sc.topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, sc.topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %q: %w", sc.topic, err)
	}
	var atTime kadm.ListedOffsets
	if req.mode == "to-timestamp" {
		if atTime, err = adm.ListOffsetsAfterMilli(ctx, req.tsMillis, sc.topic); err != nil {
			return nil, fmt.Errorf("list offsets of %q at %d: %w", sc.topic, req.tsMillis, err)
		}
	}
	bounds := make([]resetBound, 0, len(partitions))
	for _, p := range partitions {
		s, sok := starts.Lookup(sc.topic, p)
		e, eok := ends.Lookup(sc.topic, p)
		if !sok || !eok || s.Err != nil || e.Err != nil {
			return nil, fmt.Errorf("list offsets of %q partition %d: %v", sc.topic, p, errors.Join(s.Err, e.Err))
		}
		// A time after the last record (the broker answers -1, which kadm
		// turns into the high watermark) sends the group to the log end,
		// where the next record at or after that time will be, as
		// kafka-consumer-groups does too.
		b := resetBound{partition: p, logStart: s.Offset, highWatermark: e.Offset, atTime: e.Offset}
		if t, ok := atTime.Lookup(sc.topic, p); ok && t.Err == nil && t.Offset >= 0 {
			b.atTime = t.Offset
		}
		bounds = append(bounds, b)
	}
	return bounds, nil
}

// groupPositions is where a group stands: a consumer group's committed
// offsets, a share group's share-partition start offsets.
func groupPositions(ctx context.Context, adm *kadm.Client, group string, share bool) (map[string]map[int32]int64, error) {
	if share {
		return shareStartOffsets(ctx, adm, group)
	}
	return groupCommits(ctx, adm, group)
}

// groupCommits is group's committed offsets by topic and partition;
// partitions with nothing committed are left out.
func groupCommits(ctx context.Context, adm *kadm.Client, group string) (map[string]map[int32]int64, error) {
	var fetched kadm.OffsetResponses
	err := groupRetry(ctx, func() (err error) {
		fetched, err = adm.FetchOffsets(ctx, group)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fetch committed offsets of group %q: %w", group, err)
	}
	out := map[string]map[int32]int64{}
	// OffsetFetch answers -1 with no error for a partition the group
	// never committed (and for a group that does not exist), as Kafka
	// does: both mean "no commit" here.
	fetched.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil || o.At < 0 {
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.At
	})
	return out, nil
}

// commitReset commits the plan. A request that fails as a whole is the
// error; partitions the broker refused one by one (the others are then
// committed: OffsetCommit is not atomic across partitions) get their
// Error set in plan and come back as failures, so the output can show
// both halves.
func commitReset(ctx context.Context, adm *kadm.Client, group string, plan []offsetReset) ([]error, error) {
	// Leader epoch -1: the new offset was not read from a record, so there
	// is no epoch to vouch for it, and a consumer must not use one to
	// detect truncation (KIP-320) against the wrong epoch. kadm commits
	// with generation -1, the "simple commit" a group without members
	// accepts.
	offsets := kadm.Offsets{}
	for _, r := range plan {
		offsets.Add(kadm.Offset{Topic: r.Topic, Partition: r.Partition, At: r.New, LeaderEpoch: -1})
	}
	var resps kadm.OffsetResponses
	var requestErr error
	err := groupRetry(ctx, func() error {
		resps, requestErr = adm.CommitOffsets(ctx, group, offsets)
		if requestErr != nil {
			return requestErr
		}
		return resps.Error() // a loading coordinator answers per partition
	})
	if requestErr != nil {
		return nil, fmt.Errorf("commit offsets for group %q: %w", group, requestErr)
	}
	if err == nil {
		return nil, nil
	}
	var failed []error
	for i, r := range plan {
		resp, ok := resps.Lookup(r.Topic, r.Partition)
		partitionErr := resp.Err
		if !ok {
			partitionErr = errors.New("no answer for the partition")
		}
		if partitionErr == nil {
			continue
		}
		plan[i].Error = partitionErr.Error()
		failed = append(failed, fmt.Errorf("commit offset %d for group %q on %s/%d: %w", r.New, group, r.Topic, r.Partition, partitionErr))
	}
	return failed, nil
}

// resetOffset is one partition's new offset for mode, clamped to the log
// [logStart, logEnd]; old is the committed offset or -1, given the offset
// listed for the time, read from the file or copied from the other group.
func resetOffset(mode string, target resetTarget, old, logStart, logEnd, given int64) int64 {
	var next int64
	switch mode {
	case "to-earliest":
		next = logStart
	case "to-latest":
		next = logEnd
	case "to-offset":
		next = target.offset
	case "to-timestamp", "from-file", "to-group":
		next = given
	case "shift-by":
		// Nothing committed shifts from the log start, where a new
		// consumer with auto.offset.reset=earliest would begin, so
		// --shift-by 100 on a fresh group skips the first 100.
		base := old
		if base < 0 {
			base = logStart
		}
		next = base + target.shiftBy
	}
	// Clamped to the log: an offset below the start would make the
	// consumer fall back to auto.offset.reset, one past the end would
	// give OFFSET_OUT_OF_RANGE, and neither is what the user asked for.
	return min(max(next, logStart), logEnd)
}
