package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// shareProtocolType is the protocol type DescribeGroups gives a share
// group (KIP-932).
const shareProtocolType = "share"

// describeShareMembers adds what ShareGroupDescribe knows of a share
// group: the group and member epochs, each member's assigned partitions
// (DescribeGroups shows share members with no assignment) and the assignor
// as the protocol. A share group has no committed offsets: its partitions
// are filled by describeShareOffsets.
func describeShareMembers(ctx context.Context, adm *kadm.Client, d *groupDescription) error {
	var described kadm.DescribedShareGroups
	err := groupRetry(ctx, func() (err error) {
		described, err = adm.DescribeShareGroups(ctx, d.Group)
		if err == nil {
			if g, ok := described[d.Group]; ok {
				err = g.Err
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("describe share group %q: %w", d.Group, err)
	}
	g := described[d.Group]
	d.State, d.Protocol = g.GroupState, g.Assignor
	d.GroupType, d.GroupEpoch, d.AssignmentEpoch, d.Assignor = shareProtocolType, g.GroupEpoch, g.AssignmentEpoch, g.Assignor
	d.Members = d.Members[:0]
	for _, m := range g.Members {
		epoch := m.MemberEpoch
		md := groupMemberDesc{MemberID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assigned: map[string][]int32{}, MemberEpoch: &epoch}
		for topic, partitions := range m.Assignment {
			md.Assigned[topic] = slices.Sorted(maps.Keys(partitions))
		}
		d.Members = append(d.Members, md)
	}
	return nil
}

// isShareGroup says whether group is a share group: DescribeGroups gives
// share groups protocol type "share". A group that does not exist is not.
func isShareGroup(ctx context.Context, adm *kadm.Client, group string) (bool, error) {
	var described kadm.DescribedGroups
	err := groupRetry(ctx, func() (err error) {
		described, err = adm.DescribeGroups(ctx, group)
		if err == nil {
			err = described.Error()
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("describe group %q: %w", group, err)
	}
	return described[group].ProtocolType == shareProtocolType, nil
}

// shareStartOffsets is a share group's share-partition start offsets by
// topic and partition (DescribeShareGroupOffsets, every topic the group
// has state for); partitions without state are left out.
func shareStartOffsets(ctx context.Context, adm *kadm.Client, group string) (map[string]map[int32]int64, error) {
	var described kadm.DescribedShareGroupsOffsets
	err := groupRetry(ctx, func() (err error) {
		described, err = adm.DescribeShareGroupOffsets(ctx, group)
		if err == nil {
			if d, ok := described[group]; ok {
				err = d.Err
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("describe the offsets of share group %q: %w", group, err)
	}
	out := map[string]map[int32]int64{}
	for topic, partitions := range described[group].Offsets {
		for p, o := range partitions {
			if o.Err != nil || o.StartOffset < 0 {
				continue
			}
			if out[topic] == nil {
				out[topic] = map[int32]int64{}
			}
			out[topic][p] = o.StartOffset
		}
	}
	return out, nil
}

// describeShareOffsets fills a share group's partitions: each share
// partition's start offset (SPSO) and its lag, the records from there to
// the log end. That counts the records in flight above the start offset,
// acknowledged ones too, so it is at most Kafka 4.2's lag (KIP-1226,
// which leaves those out and which this broker does not serve).
func describeShareOffsets(ctx context.Context, adm *kadm.Client, d *groupDescription) error {
	starts, err := shareStartOffsets(ctx, adm, d.Group)
	if err != nil {
		return err
	}
	d.Partitions, d.TotalLag = []groupPartitionDesc{}, 0
	if len(starts) == 0 {
		return nil
	}
	topics := slices.Sorted(maps.Keys(starts))
	logStarts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list log start offsets of %v: %w", topics, err)
	}
	logEnds, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list end offsets of %v: %w", topics, err)
	}
	for _, topic := range topics {
		for _, p := range slices.Sorted(maps.Keys(starts[topic])) {
			start := starts[topic][p]
			pd := groupPartitionDesc{Topic: topic, Partition: p, Committed: -1, StartOffset: &start, LogStart: -1, LogEnd: -1}
			s, sok := logStarts.Lookup(topic, p)
			e, eok := logEnds.Lookup(topic, p)
			if !sok || !eok || s.Err != nil || e.Err != nil {
				pd.Error = fmt.Sprintf("list offsets: %v", errors.Join(s.Err, e.Err))
			} else {
				// Records below the log start are gone (archived by the
				// share partition), so they are no lag.
				pd.LogStart, pd.LogEnd = s.Offset, e.Offset
				pd.Lag = max(e.Offset-max(start, s.Offset), 0)
				d.TotalLag += pd.Lag
			}
			d.Partitions = append(d.Partitions, pd)
		}
	}
	return nil
}

// commitShareReset sets a share group's start offsets to the plan
// (AlterShareGroupOffsets), as commitReset commits a consumer group's.
func commitShareReset(ctx context.Context, adm *kadm.Client, group string, plan []offsetReset) ([]error, error) {
	offsets := kadm.Offsets{}
	for _, r := range plan {
		offsets.Add(kadm.Offset{Topic: r.Topic, Partition: r.Partition, At: r.New, LeaderEpoch: -1})
	}
	var resps kadm.AlterShareGroupOffsetsResponses
	err := groupRetry(ctx, func() (err error) {
		resps, err = adm.AlterShareGroupOffsets(ctx, group, offsets)
		return err
	})
	if err != nil {
		return nil, shareOffsetsGroupError("alter the offsets of", group, err)
	}
	var failed []error
	for i, r := range plan {
		partitionErr, ok := resps.Lookup(r.Topic, r.Partition)
		if !ok {
			partitionErr = errors.New("no answer for the partition")
		}
		if partitionErr == nil {
			continue
		}
		plan[i].Error = partitionErr.Error()
		failed = append(failed, fmt.Errorf("set start offset %d for share group %q on %s/%d: %w", r.New, group, r.Topic, r.Partition, partitionErr))
	}
	return failed, nil
}

// shareOffsetsGroupError words a request-level failure of
// AlterShareGroupOffsets or DeleteShareGroupOffsets.
func shareOffsetsGroupError(what, group string, err error) error {
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		return fmt.Errorf("share group %q does not exist (%w)", group, err)
	case errors.Is(err, kerr.NonEmptyGroup):
		return fmt.Errorf("share group %q has members: stop its consumers first (%w)", group, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s share group %q: no answer in time (%w)", what, group, err)
	}
	return fmt.Errorf("%s share group %q: %w", what, group, err)
}

// deleteShareOffsets deletes a share group's start offsets of whole topics
// (DeleteShareGroupOffsets names topics, not partitions); each deleted
// topic is listed with its partitions.
func deleteShareOffsets(ctx context.Context, adm *kadm.Client, group string, set kadm.TopicsSet) ([]groupOffsetDeleted, []nameFailure, error) {
	topics := set.Topics()
	slices.Sort(topics)
	var resps kadm.DeleteShareGroupOffsetsResponses
	err := groupRetry(ctx, func() (err error) {
		resps, err = adm.DeleteShareGroupOffsets(ctx, group, topics...)
		return err
	})
	if err != nil {
		return nil, nil, shareOffsetsGroupError("delete the offsets of", group, err)
	}
	deleted := []groupOffsetDeleted{}
	var failed []nameFailure
	for _, tp := range set.Sorted() {
		err, ok := resps.Lookup(tp.Topic)
		switch {
		case !ok:
			err = fmt.Errorf("share group %q: topic %q: no answer for the topic", group, tp.Topic)
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			err = fmt.Errorf("share group %q has no offsets on topic %q (%w)", group, tp.Topic, err)
		case err != nil:
			err = fmt.Errorf("share group %q: topic %q: %w", group, tp.Topic, err)
		default:
			for _, p := range slices.Sorted(slices.Values(tp.Partitions)) {
				deleted = append(deleted, groupOffsetDeleted{Topic: tp.Topic, Partition: p})
			}
			continue
		}
		failed = append(failed, failedTopic(tp.Topic, err))
	}
	return deleted, failed, nil
}
