package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// groupOffsetDeleted is one partition whose commit is gone, as --json
// lists it. A partition the group never committed counts too: OffsetDelete
// succeeds for it, and the user's intent (no commit there) holds.
type groupOffsetDeleted struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

func newGroupOffsetDeleteCmd(e *clientEnv) *cobra.Command {
	var topics []string
	cmd := &cobra.Command{
		Use:   "offset-delete GROUP --topic TOPIC[:P,P]...",
		Short: "Delete a group's committed offsets for some partitions (a share group's for topics)",
		Long: "Delete a consumer group's committed offsets for the partitions named (a topic\n" +
			"alone means all its partitions), with OffsetDelete as kafka-consumer-groups\n" +
			"--delete-offsets does. The group may have members, but not ones subscribed to\n" +
			"the topic (GROUP_SUBSCRIBED_TO_TOPIC). Deleting a partition with no commit\n" +
			"succeeds. On a share group (KIP-932), which must have no members, the start\n" +
			"offsets of whole topics are deleted (DeleteShareGroupOffsets), so its next\n" +
			"consumer starts at share.auto.offset.reset.",
		Example: "  sluice group offset-delete billing --topic orders\n" +
			"  sluice group offset-delete billing --topic orders:0,1 --topic refunds --json",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGroupOffsetDelete(cmd, e, args[0], topics)
		},
	}
	cmd.Flags().StringArrayVar(&topics, "topic", nil, "TOPIC or TOPIC:P,P whose offsets to delete (repeatable, required)")
	cmd.ValidArgsFunction = completeGroups(e)
	return cmd
}

// runGroupOffsetDelete checks every --topic spec, then every topic, and
// only then deletes, so a mistake anywhere on the command line deletes
// nothing.
func runGroupOffsetDelete(cmd *cobra.Command, e *clientEnv, group string, specs []string) error {
	asJSON, err := e.jsonOutput()
	if err != nil {
		return err
	}
	if len(specs) == 0 {
		return usageErrorf("--topic is required")
	}
	type scope struct {
		topic string
		only  []int32
	}
	scopes := make([]scope, 0, len(specs))
	for _, spec := range specs {
		topic, only, err := groupPartitions(spec)
		if err != nil {
			return err
		}
		scopes = append(scopes, scope{topic, only})
	}
	ctx, adm, done, err := e.adminSession(cmd.Context())
	if err != nil {
		return err
	}
	defer done()
	share, err := isShareGroup(ctx, adm, group)
	if err != nil {
		return err
	}
	set := kadm.TopicsSet{}
	// Every topic is checked before anything is deleted: a typo in the
	// second --topic must not leave the first one's offsets gone.
	for _, s := range scopes {
		if share && s.only != nil {
			return fmt.Errorf("share group %q: a share group's offsets are deleted for whole topics: give --topic %s without partitions", group, s.topic)
		}
		partitions, err := topicPartitionsIn(ctx, adm, s.topic, s.only)
		if err != nil {
			return err
		}
		set.Add(s.topic, partitions...)
	}
	deleted, failed, err := deleteGroupOffsets(ctx, adm, group, share, set)
	if err != nil {
		return err
	}
	if asJSON {
		doc := struct {
			Group   string               `json:"group"`
			Deleted []groupOffsetDeleted `json:"deleted"`
			Errors  []nameFailure        `json:"errors"`
		}{group, deleted, failed}
		if err := printJSON(cmd.OutOrStdout(), doc); err != nil {
			return err
		}
	} else {
		for _, d := range deleted {
			fmt.Fprintf(cmd.OutOrStdout(), "deleted the offset of group %s on %s/%d\n", group, d.Topic, d.Partition)
		}
	}
	return failureErrors(failed)
}

// deleteGroupOffsets deletes a consumer group's commits, or a share
// group's start offsets of whole topics.
func deleteGroupOffsets(ctx context.Context, adm *kadm.Client, group string, share bool, set kadm.TopicsSet) ([]groupOffsetDeleted, []nameFailure, error) {
	if share {
		return deleteShareOffsets(ctx, adm, group, set)
	}
	// OffsetDelete (KIP-496) goes to the group's coordinator in one
	// request for every partition; group-level errors (no such group, a
	// loading coordinator) come back for the whole request.
	var resps kadm.DeleteOffsetsResponses
	err := groupRetry(ctx, func() (err error) {
		resps, err = adm.DeleteOffsets(ctx, group, set)
		return err
	})
	if err != nil {
		return nil, nil, offsetDeleteGroupError(group, err)
	}
	deleted, failed := offsetDeleteResults(group, set, resps)
	return deleted, failed, nil
}

// offsetDeleteResults sorts the answers into what was deleted and a
// failure per partition that was not, worded for people.
func offsetDeleteResults(group string, set kadm.TopicsSet, resps kadm.DeleteOffsetsResponses) ([]groupOffsetDeleted, []nameFailure) {
	deleted := []groupOffsetDeleted{}
	var failed []nameFailure
	// Walked in topic and partition order so the output and the first
	// error are the same on every run.
	for _, tp := range set.Sorted() {
		for _, p := range slices.Sorted(slices.Values(tp.Partitions)) {
			err, ok := resps.Lookup(tp.Topic, p)
			switch {
			case !ok:
				err = fmt.Errorf("group %q: %s/%d: no answer for the partition", group, tp.Topic, p)
			case errors.Is(err, kerr.GroupSubscribedToTopic):
				err = fmt.Errorf("group %q: %s/%d: a member of the group is subscribed to topic %q: stop it or change its subscription first (%w)", group, tp.Topic, p, tp.Topic, err)
			case errors.Is(err, kerr.UnknownTopicOrPartition):
				err = fmt.Errorf("group %q: %s/%d: no such partition (%w)", group, tp.Topic, p, err)
			case err != nil:
				err = fmt.Errorf("group %q: %s/%d: %w", group, tp.Topic, p, err)
			default:
				deleted = append(deleted, groupOffsetDeleted{Topic: tp.Topic, Partition: p})
				continue
			}
			failed = append(failed, failedPartition(tp.Topic, p, err))
		}
	}
	return deleted, failed
}

// offsetDeleteGroupError words a group-level OffsetDelete failure.
func offsetDeleteGroupError(group string, err error) error {
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		return fmt.Errorf("group %q does not exist (%w)", group, err)
	case errors.Is(err, kerr.NonEmptyGroup):
		return fmt.Errorf("group %q has members: stop its consumers first (%w)", group, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("delete offsets of group %q: no answer in time (%w)", group, err)
	}
	return fmt.Errorf("delete offsets of group %q: %w", group, err)
}
