package main

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
)

// shareProtocolType is the protocol type DescribeGroups gives a share
// group (KIP-932).
const shareProtocolType = "share"

// describeShareMembers adds what ShareGroupDescribe knows of a share
// group: the group and member epochs, each member's assigned partitions
// (DescribeGroups shows share members with no assignment) and the assignor
// as the protocol. A
// share group has no committed offsets: each share partition keeps its
// own start offset, so no lag is shown.
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
