package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// partitionTrim is one partition's line in `topic trim`, planned or done.
// Kafka calls the log start offset the low watermark in DeleteRecords'
// answer; the output uses that word so it matches kafka-delete-records.
type partitionTrim struct {
	Partition       int32  `json:"partition"`
	Offset          int64  `json:"offset"` // records below it are deleted
	OldLowWatermark int64  `json:"old_low_watermark"`
	LowWatermark    int64  `json:"low_watermark"`   // -1 on error
	RecordsDeleted  int64  `json:"records_deleted"` // offsets, so a compacted log's gaps count too
	HighWatermark   int64  `json:"high_watermark"`
	Error           string `json:"error,omitempty"`
}

type topicTrim struct {
	Topic      string          `json:"topic"`
	DryRun     bool            `json:"dry_run"`
	Partitions []partitionTrim `json:"partitions"`
}

type trimOptions struct {
	offset int64
	before string
	dryRun bool
}

func newTopicTrimCmd(e *clientEnv) *cobra.Command {
	var o trimOptions
	cmd := &cobra.Command{
		Use:   "trim TOPIC[:P,P] (--offset N | --before TIME)",
		Short: "Delete a topic's oldest records, up to an offset or a time",
		Long: "Delete the records before an offset (--offset N) or before the first record at\n" +
			"or after a time (--before TIME: milliseconds since the epoch, @MS or RFC 3339),\n" +
			"with DeleteRecords: each partition's log start offset (low watermark) moves up.\n" +
			"An offset past a partition's high watermark fails for that partition\n" +
			"(OFFSET_OUT_OF_RANGE); a time past every record deletes them all. An offset\n" +
			"below the log start changes nothing. --dry-run prints the plan and deletes nothing.",
		Example: "  sluice topic trim orders --offset 1000 --dry-run\n" +
			"  sluice topic trim orders:0,2 --offset 1000\n" +
			"  sluice topic trim orders --before 2026-11-01T00:00:00Z --json",
		Args: exactlyOneTopic,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTopicTrim(cmd, e, args[0], o)
		},
	}
	cmd.Flags().Int64Var(&o.offset, "offset", 0, "delete the records below offset N")
	cmd.Flags().StringVar(&o.before, "before", "", "delete the records before this time (ms, @MS or RFC 3339)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print what would be deleted and delete nothing")
	cmd.ValidArgsFunction = completeTopics(e)
	return cmd
}

func runTopicTrim(cmd *cobra.Command, e *clientEnv, spec string, o trimOptions) error {
	asJSON, err := e.jsonOutput()
	if err != nil {
		return err
	}
	topic, only, err := parseTopicPartitions("TOPIC", spec)
	if err != nil {
		return err
	}
	byOffset, byTime := cmd.Flags().Changed("offset"), cmd.Flags().Changed("before")
	if byOffset == byTime {
		return usageErrorf("give exactly one of --offset N or --before TIME")
	}
	// Negative offsets mean "the high watermark" to DeleteRecords (-1);
	// a user who wants everything gone should say --before with a future
	// time, not stumble on a sentinel.
	if byOffset && o.offset < 0 {
		return usageErrorf("--offset %d: want an offset, 0 or more", o.offset)
	}
	beforeMillis := int64(-1)
	if byTime {
		if beforeMillis, err = parseTimestamp("--before", o.before); err != nil {
			return err
		}
	}
	ctx, adm, done, err := e.adminSession(cmd.Context())
	if err != nil {
		return err
	}
	defer done()
	plan, err := planTrim(ctx, adm, topic, only, o.offset, beforeMillis)
	if err != nil {
		return err
	}
	// A dry run predicts from the offsets just listed; a real run reports
	// what the broker did. They can differ if records arrive in between,
	// which is why the real run never trusts the prediction.
	if o.dryRun {
		for i := range plan {
			plan[i].expect()
		}
	} else if err := applyTrim(ctx, adm, topic, plan); err != nil {
		return err
	}
	result := topicTrim{Topic: topic, DryRun: o.dryRun, Partitions: plan}
	if err := result.print(cmd, asJSON); err != nil {
		return err
	}
	var errs []error
	for _, p := range plan {
		if p.Error != "" {
			errs = append(errs, fmt.Errorf("trim topic %q partition %d to offset %d: %s", topic, p.Partition, p.Offset, p.Error))
		}
	}
	return errors.Join(errs...)
}

// planTrim works out each partition's trim offset with the log start and
// high watermark around it; beforeMillis < 0 means trim at offset.
func planTrim(ctx context.Context, adm *kadm.Client, topic string, only []int32, offset, beforeMillis int64) ([]partitionTrim, error) {
	partitions, err := topicPartitionsIn(ctx, adm, topic, only)
	if err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list log start offsets of topic %q: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of topic %q: %w", topic, err)
	}
	var atTime kadm.ListedOffsets
	if beforeMillis >= 0 {
		// A time past every record lists the high watermark: trim it all.
		if atTime, err = adm.ListOffsetsAfterMilli(ctx, beforeMillis, topic); err != nil {
			return nil, fmt.Errorf("list offsets of topic %q at %d: %w", topic, beforeMillis, err)
		}
	}
	plan := make([]partitionTrim, 0, len(partitions))
	for _, p := range partitions {
		s, sok := starts.Lookup(topic, p)
		h, hok := ends.Lookup(topic, p)
		t := partitionTrim{Partition: p, Offset: offset, OldLowWatermark: s.Offset, LowWatermark: -1, HighWatermark: h.Offset}
		switch {
		case !sok || !hok || s.Err != nil || h.Err != nil:
			t.Error = "cannot list its offsets: " + errors.Join(s.Err, h.Err).Error()
		case beforeMillis >= 0:
			if a, ok := atTime.Lookup(topic, p); ok && a.Err == nil && a.Offset >= 0 {
				t.Offset = a.Offset
			} else {
				t.Offset, t.Error = -1, fmt.Sprintf("cannot list its offset at %d: %v", beforeMillis, a.Err)
			}
		}
		plan = append(plan, t)
	}
	return plan, nil
}

// expect fills in, for a dry run, the outcome the broker would give:
// DeleteRecords refuses an offset past the high watermark and never moves
// the log start back. A real run leaves the judgement to the broker, whose
// high watermark may have moved since it was listed.
func (t *partitionTrim) expect() {
	if t.Error != "" {
		return
	}
	if t.Offset > t.HighWatermark {
		t.Error = fmt.Sprintf("offset %d is past the high watermark %d (%s)", t.Offset, t.HighWatermark, kerr.OffsetOutOfRange.Message)
		return
	}
	t.LowWatermark = max(t.Offset, t.OldLowWatermark)
	t.RecordsDeleted = t.LowWatermark - t.OldLowWatermark
}

// applyTrim sends DeleteRecords for the partitions the plan has no error
// for and replaces the plan's expectations with the broker's answers.
func applyTrim(ctx context.Context, adm *kadm.Client, topic string, plan []partitionTrim) error {
	offsets := kadm.Offsets{}
	for _, t := range plan {
		if t.Error == "" {
			offsets.Add(kadm.Offset{Topic: topic, Partition: t.Partition, At: t.Offset, LeaderEpoch: -1})
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	// kadm sends one request per leader; some may fail while others
	// succeed, so a request error is fatal only when nothing answered,
	// and otherwise lands on the partitions that got no answer.
	resps, err := adm.DeleteRecords(ctx, offsets)
	if err != nil && len(resps) == 0 {
		return fmt.Errorf("delete records of topic %q: %w", topic, err)
	}
	for i := range plan {
		t := &plan[i]
		if t.Error != "" {
			continue
		}
		r, ok := resps.Lookup(topic, t.Partition)
		switch {
		case !ok:
			t.Error = fmt.Sprintf("no answer: %v", err)
		case errors.Is(r.Err, kerr.OffsetOutOfRange):
			t.Error = fmt.Sprintf("offset %d is past the high watermark %d (%s)", t.Offset, t.HighWatermark, kerr.OffsetOutOfRange.Message)
		case r.Err != nil:
			t.Error = r.Err.Error()
		default:
			// Clamped: retention may have moved the start past the old
			// value since it was listed, and nothing was deleted twice.
			t.LowWatermark = r.LowWatermark
			t.RecordsDeleted = max(r.LowWatermark-t.OldLowWatermark, 0)
		}
	}
	return nil
}

func (t topicTrim) print(cmd *cobra.Command, asJSON bool) error {
	if asJSON {
		return printJSON(cmd.OutOrStdout(), t)
	}
	rows := make([][]string, 0, len(t.Partitions))
	for _, p := range t.Partitions {
		low, deleted := "", ""
		if p.Error == "" {
			low, deleted = strconv.FormatInt(p.LowWatermark, 10), strconv.FormatInt(p.RecordsDeleted, 10)
		}
		rows = append(rows, []string{strconv.Itoa(int(p.Partition)), strconv.FormatInt(p.OldLowWatermark, 10),
			low, deleted, strconv.FormatInt(p.HighWatermark, 10), p.Error})
	}
	if err := printTable(cmd.OutOrStdout(), []string{"PARTITION", "OLD-LOW-WATERMARK", "NEW-LOW-WATERMARK", "DELETED", "HIGH-WATERMARK", "ERROR"}, rows); err != nil {
		return err
	}
	if t.DryRun {
		fmt.Fprintln(cmd.ErrOrStderr(), "sluice: dry run: nothing was deleted")
	}
	return nil
}
