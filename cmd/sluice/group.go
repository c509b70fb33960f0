package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func newGroupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "group",
		Short:   "List, describe, reset and delete consumer groups",
		Example: "  sluice group list\n  sluice group describe billing\n  sluice group reset-offsets billing --topic orders --to-earliest",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	e := newClientEnv(cmd)
	cmd.AddCommand(newGroupListCmd(e), newGroupDescribeCmd(e), newGroupResetOffsetsCmd(e), newGroupDeleteCmd(e), newGroupOffsetDeleteCmd(e))
	return cmd
}

// groupRetry retries f while the group's coordinator is still loading: on
// a group's first use the broker answers COORDINATOR_LOAD_IN_PROGRESS or
// COORDINATOR_NOT_AVAILABLE for a moment, as Kafka does.
func groupRetry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if !errors.Is(err, kerr.CoordinatorLoadInProgress) && !errors.Is(err, kerr.CoordinatorNotAvailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		// 50 ms: a coordinator loads a small __consumer_offsets
		// partition in milliseconds, so a few tries cover the wait
		// without flooding a broker that is still starting.
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// groupListed is one line of `group list`. Coordinator is the broker
// that owns the group (the leader of its __consumer_offsets partition),
// where to look when a group misbehaves.
type groupListed struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Members      int    `json:"members"`
	Coordinator  int32  `json:"coordinator"`
}

func newGroupListCmd(e *clientEnv) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups with their state and member count",
		Example: "  sluice group list\n  sluice group list --json",
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
			groups, err := listGroups(ctx, adm)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), groups)
			}
			rows := make([][]string, 0, len(groups))
			for _, g := range groups {
				rows = append(rows, []string{g.Group, g.State, g.ProtocolType, strconv.Itoa(g.Members)})
			}
			return printTable(cmd.OutOrStdout(), []string{"GROUP", "STATE", "PROTOCOL-TYPE", "MEMBERS"}, rows)
		},
	}
}

func listGroups(ctx context.Context, adm *kadm.Client) ([]groupListed, error) {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	out := []groupListed{}
	// ListGroups gives names and states but not members; DescribeGroups
	// adds the member count people look for first. Skipped when there is
	// nothing to describe, since an empty DescribeGroups is a wasted trip.
	names := listed.Groups()
	if len(names) == 0 {
		return out, nil
	}
	var described kadm.DescribedGroups
	err = groupRetry(ctx, func() (err error) {
		described, err = adm.DescribeGroups(ctx, names...)
		if err == nil {
			err = described.Error()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("describe groups: %w", err)
	}
	for _, l := range listed.Sorted() {
		g := groupListed{Group: l.Group, State: l.State, ProtocolType: l.ProtocolType, Coordinator: l.Coordinator}
		// DescribeGroups' state wins: it was read after ListGroups, and a
		// group between the two requests may have moved on.
		if d, ok := described[l.Group]; ok {
			g.State, g.Members = d.State, len(d.Members)
		}
		out = append(out, g)
	}
	return out, nil
}

func newGroupDeleteCmd(e *clientEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete GROUP...",
		Short: "Delete consumer groups and their committed offsets",
		Long: "Delete consumer groups and their committed offsets. A group with members\n" +
			"cannot be deleted (NON_EMPTY_GROUP): stop its consumers first.",
		Example: "  sluice group delete billing",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, groups []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			ctx, adm, done, err := e.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			var resps kadm.DeleteGroupResponses
			err = groupRetry(ctx, func() (err error) {
				resps, err = adm.DeleteGroups(ctx, groups...)
				return err
			})
			if err != nil {
				return fmt.Errorf("delete groups: %w", err)
			}
			deleted := []string{}
			var failed []nameFailure
			for _, g := range groups {
				// Worded for the two refusals people meet: a name that does
				// not exist (often a typo) and a group still in use.
				r, answered := resps[g]
				switch {
				case !answered:
					// A zero response would read as success: a group the
					// broker said nothing about was not deleted.
					failed = append(failed, failedGroup(g, fmt.Errorf("delete group %q: the broker's response did not mention it", g)))
				case errors.Is(r.Err, kerr.GroupIDNotFound):
					failed = append(failed, failedGroup(g, fmt.Errorf("group %q does not exist (%w)", g, r.Err)))
				case errors.Is(r.Err, kerr.NonEmptyGroup):
					failed = append(failed, failedGroup(g, fmt.Errorf("group %q has members: stop its consumers first (%w)", g, r.Err)))
				case r.Err != nil:
					failed = append(failed, failedGroup(g, fmt.Errorf("delete group %q: %w", g, r.Err)))
				default:
					deleted = append(deleted, g)
				}
			}
			return printDeleted(cmd, asJSON, "group", deleted, failed)
		},
	}
	cmd.ValidArgsFunction = completeGroups(e)
	return cmd
}

// groupPartitions parses --topic T or T:0,2 into the topic and the chosen
// partitions (nil: all).
func groupPartitions(spec string) (string, []int32, error) {
	return parseTopicPartitions("--topic", spec)
}

// parseTopicPartitions parses T or T:0,2, given as what (a flag or an
// argument's name, for the usage error), into the topic and the chosen
// partitions, sorted and without repeats (nil: all).
func parseTopicPartitions(what, spec string) (string, []int32, error) {
	topic, list, found := strings.Cut(spec, ":")
	if topic == "" {
		return "", nil, usageErrorf("%s %q: want TOPIC or TOPIC:P,P", what, spec)
	}
	if !found {
		return topic, nil, nil
	}
	var parts []int32
	for _, s := range strings.Split(list, ",") {
		p, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
		if err != nil || p < 0 {
			return "", nil, usageErrorf("%s %q: partition %q is not a partition number", what, spec, s)
		}
		parts = append(parts, int32(p))
	}
	// Sorted and deduplicated so that "0,0,1" or "1,0" reads the same
	// partitions once each, in the order they are printed.
	slices.Sort(parts)
	return topic, slices.Compact(parts), nil
}
