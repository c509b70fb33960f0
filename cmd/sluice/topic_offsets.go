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
)

// parseTimestamp reads a point in time as consume's --offset @TIME does,
// with or without the @: milliseconds since the epoch or RFC 3339. flag
// names the flag in the usage error.
//
// It goes through parseOffsetSpec so that every command reads times the
// same way; a fix to one (time zones, fractions) is a fix to all.
func parseTimestamp(flag, s string) (int64, error) {
	spec, err := parseOffsetSpec("@" + strings.TrimPrefix(s, "@"))
	if err != nil || spec.kind != offsetTime {
		return 0, usageErrorf("%s %q: want milliseconds since the epoch (or @MS) or RFC 3339", flag, s)
	}
	return spec.n, nil
}

// topicPartitionsIn checks that topic exists and returns its partitions, or
// those of only (nil: all), failing on a partition the topic does not have.
func topicPartitionsIn(ctx context.Context, adm *kadm.Client, topic string, only []int32) ([]int32, error) {
	d, err := describeOne(ctx, adm, topic)
	if err != nil {
		return nil, err
	}
	all := d.Partitions.Numbers()
	slices.Sort(all)
	if only == nil {
		return all, nil
	}
	// Checked here, because the brokers would answer a partition that does
	// not exist with UNKNOWN_TOPIC_OR_PARTITION, which reads as if the
	// whole topic were missing.
	for _, p := range only {
		if !slices.Contains(all, p) {
			return nil, fmt.Errorf("topic %q has %d partition(s): partition %d does not exist", topic, len(all), p)
		}
	}
	return only, nil
}

// partitionOffset is one row of `topic offsets`.
type partitionOffset struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`    // -1: no record at or after the time
	Timestamp int64  `json:"timestamp"` // the record's, for --at TIME; else -1
	Error     string `json:"error,omitempty"`
}

type topicOffsets struct {
	Topic   string            `json:"topic"`
	At      string            `json:"at"`
	Offsets []partitionOffset `json:"offsets"`
}

func newTopicOffsetsCmd(e *clientEnv) *cobra.Command {
	var at string
	cmd := &cobra.Command{
		Use:   "offsets TOPIC[:P,P] [--at start|end|TIME]",
		Short: "Show each partition's offset at the start, the end or a time",
		Long: "Show per partition the log start offset (--at start), the high watermark\n" +
			"(--at end, the default), or the first record at or after a time (--at TIME,\n" +
			"milliseconds since the epoch, @MS or RFC 3339) with that record's timestamp,\n" +
			"as kcat -Q does. A partition with no record at or after the time shows offset -1.",
		Example: "  sluice topic offsets orders\n" +
			"  sluice topic offsets orders --at start\n" +
			"  sluice topic offsets orders:0,2 --at 2026-11-01T00:00:00Z --json",
		Args: exactlyOneTopic,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			topic, only, err := parseTopicPartitions("TOPIC", args[0])
			if err != nil {
				return err
			}
			list, atMillis, err := offsetsLister(at)
			if err != nil {
				return err
			}
			ctx, adm, done, err := e.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			partitions, err := topicPartitionsIn(ctx, adm, topic, only)
			if err != nil {
				return err
			}
			listed, err := list(ctx, adm, topic)
			if err != nil {
				return fmt.Errorf("list offsets of topic %q: %w", topic, err)
			}
			out := topicOffsets{Topic: topic, At: at, Offsets: []partitionOffset{}}
			var errs []error
			for _, p := range partitions {
				row := listedOffsetRow(listed, topic, p, atMillis >= 0)
				if row.Error != "" {
					errs = append(errs, fmt.Errorf("topic %q partition %d: %s", topic, p, row.Error))
				}
				out.Offsets = append(out.Offsets, row)
			}
			if err := out.print(cmd, asJSON); err != nil {
				return err
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVar(&at, "at", "end", "start, end, or a time (ms, @MS or RFC 3339)")
	cmd.ValidArgsFunction = completeTopics(e)
	return cmd
}

type offsetsListFunc func(context.Context, *kadm.Client, string) (kadm.ListedOffsets, error)

// offsetsLister turns --at into the listing to run and, for a time, its
// milliseconds (-1 otherwise).
func offsetsLister(at string) (offsetsListFunc, int64, error) {
	switch at {
	case "start", "beginning", "earliest":
		return func(ctx context.Context, adm *kadm.Client, t string) (kadm.ListedOffsets, error) {
			return adm.ListStartOffsets(ctx, t)
		}, -1, nil
	case "end", "latest":
		return func(ctx context.Context, adm *kadm.Client, t string) (kadm.ListedOffsets, error) {
			return adm.ListEndOffsets(ctx, t)
		}, -1, nil
	}
	ms, err := parseTimestamp("--at", at)
	if err != nil {
		return nil, 0, usageErrorf("--at %q: want start, end, milliseconds since the epoch (or @MS) or RFC 3339", at)
	}
	return func(ctx context.Context, adm *kadm.Client, t string) (kadm.ListedOffsets, error) {
		return adm.ListOffsetsAfterMilli(ctx, ms, t)
	}, ms, nil
}

// listedOffsetRow is partition p's row. kadm answers a time past every
// record with the high watermark and timestamp -1; a record found by time
// always has a timestamp of 0 or more, so that fallback is told apart and
// shown as offset -1, as the broker and kcat -Q say it.
func listedOffsetRow(listed kadm.ListedOffsets, topic string, p int32, byTime bool) partitionOffset {
	row := partitionOffset{Partition: p, Offset: -1, Timestamp: -1}
	o, ok := listed.Lookup(topic, p)
	switch {
	case !ok:
		row.Error = "no answer for the partition"
	case o.Err != nil:
		row.Error = o.Err.Error()
	case byTime && o.Timestamp < 0:
	case byTime:
		row.Offset, row.Timestamp = o.Offset, o.Timestamp
	default:
		row.Offset = o.Offset
	}
	return row
}

func (t topicOffsets) print(cmd *cobra.Command, asJSON bool) error {
	if asJSON {
		return printJSON(cmd.OutOrStdout(), t)
	}
	rows := make([][]string, 0, len(t.Offsets))
	for _, o := range t.Offsets {
		ts := ""
		if o.Timestamp >= 0 {
			ts = strconv.FormatInt(o.Timestamp, 10)
		}
		// An unknown timestamp prints empty, not -1: in a table -1 would
		// read as a time.
		rows = append(rows, []string{strconv.Itoa(int(o.Partition)), strconv.FormatInt(o.Offset, 10), ts, o.Error})
	}
	return printTable(cmd.OutOrStdout(), []string{"PARTITION", "OFFSET", "TIMESTAMP", "ERROR"}, rows)
}
