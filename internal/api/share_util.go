package api

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/share"
)

// shareGroupProtocolType is the protocol type ListGroups and DescribeGroups
// give share groups, and ListGroups v5's group type.
const shareGroupProtocolType = "share"

// errNoShareCoordinator answers share requests on a broker started without
// share groups.
var errNoShareCoordinator = fmt.Errorf("%w: this broker runs no share group coordinator", coord.ErrCoordinatorNotAvailable)

func shares(b *Broker) (*share.Coordinator, error) {
	if b.Shares == nil {
		return nil, errNoShareCoordinator
	}
	return b.Shares, nil
}

// checkShareCoordinator fails unless this node coordinates the group: a
// share group's membership lives on the node leading its partition of
// __consumer_offsets, as a consumer group's does.
func checkShareCoordinator(ctx context.Context, b *Broker, groupID string) error {
	if groupID == "" {
		return fmt.Errorf("%w: empty share group id", coord.ErrInvalidGroupID)
	}
	g, err := groups(b)
	if err != nil {
		return err
	}
	node, err := g.FindCoordinator(ctx, groupID)
	if err != nil {
		return err
	}
	if node != b.NodeID {
		return fmt.Errorf("%w: share group %q is coordinated by node %d", coord.ErrNotCoordinator, groupID, node)
	}
	return nil
}

// appendShareGroups adds this node's share groups to a ListGroups
// response, filtered by state and (v5) type as the other groups are.
func appendShareGroups(b *Broker, states, types []string, out []kmsg.ListGroupsResponseGroup) []kmsg.ListGroupsResponseGroup {
	if b.Shares == nil || len(types) > 0 && !containsFold(types, shareGroupProtocolType) {
		return out
	}
	for _, g := range b.Shares.Groups() {
		if len(states) > 0 && !containsFold(states, g.State) {
			continue
		}
		l := kmsg.NewListGroupsResponseGroup()
		l.Group, l.ProtocolType, l.GroupState, l.GroupType = g.GroupID, shareGroupProtocolType, g.State, shareGroupProtocolType
		out = append(out, l)
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// describeShareGroup fills a DescribeGroups answer for a share group this
// node has: its state and members, with protocol type "share" and no
// protocol metadata (share members have none).
func describeShareGroup(b *Broker, out *kmsg.DescribeGroupsResponseGroup) bool {
	if b.Shares == nil {
		return false
	}
	d, ok := b.Shares.Describe(out.Group, b.Control.Image())
	if !ok {
		return false
	}
	out.ErrorCode, out.State, out.ProtocolType, out.Protocol = 0, d.State, shareGroupProtocolType, ""
	out.Members = out.Members[:0]
	for _, m := range d.Members {
		rm := kmsg.NewDescribeGroupsResponseGroupMember()
		rm.MemberID, rm.ClientID, rm.ClientHost = m.ID, m.ClientID, m.ClientHost
		out.Members = append(out.Members, rm)
	}
	return true
}

// deleteShareGroup answers DeleteGroups for a share group of this node,
// which the consumer-group coordinator reports as GROUP_ID_NOT_FOUND.
func deleteShareGroup(ctx context.Context, b *Broker, out *kmsg.DeleteGroupsResponseGroup) {
	if b.Shares == nil || out.ErrorCode != kerr.GroupIDNotFound.Code {
		return
	}
	found, err := b.Shares.DeleteGroup(ctx, out.Group, b.Control.Image())
	if found {
		out.ErrorCode = groupErrorCode(err)
	}
}
