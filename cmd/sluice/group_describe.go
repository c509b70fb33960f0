package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupDescription is what `group describe` prints, and its --json form.
type groupDescription struct {
	Group        string               `json:"group"`
	State        string               `json:"state"`
	ProtocolType string               `json:"protocol_type"`
	Protocol     string               `json:"protocol"`
	Coordinator  string               `json:"coordinator"`
	Members      []groupMemberDesc    `json:"members"`
	Partitions   []groupPartitionDesc `json:"partitions"`
	TotalLag     int64                `json:"total_lag"`
	// GroupType is "consumer" for a group of the consumer protocol
	// (KIP-848) and "share" for a share group (KIP-932), whose epochs and
	// assignor follow, else "classic".
	GroupType       string `json:"group_type"`
	GroupEpoch      int32  `json:"group_epoch,omitempty"`
	AssignmentEpoch int32  `json:"assignment_epoch,omitempty"`
	Assignor        string `json:"assignor,omitempty"`
}

type groupMemberDesc struct {
	MemberID   string             `json:"member_id"`
	InstanceID string             `json:"instance_id,omitempty"`
	ClientID   string             `json:"client_id"`
	ClientHost string             `json:"client_host"`
	Assigned   map[string][]int32 `json:"assigned"`
	// MemberEpoch is set for members of consumer-protocol groups.
	MemberEpoch *int32 `json:"member_epoch,omitempty"`
	// MemberType is, in a consumer-protocol group, "classic" for a member
	// still using JoinGroup/SyncGroup (a mixed group, while its members
	// roll) and "consumer" for one using ConsumerGroupHeartbeat.
	MemberType string `json:"member_type,omitempty"`
}

// groupPartitionDesc is one partition the group has a commit for or a
// member assigned. Lag is log end minus committed (or minus log start when
// nothing is committed), the figure kafka-consumer-groups --describe shows
// as LAG; it counts offsets, so aborted or compacted records count too.
type groupPartitionDesc struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed_offset"` // -1: nothing committed (always, in a share group)
	// StartOffset is a share group's share-partition start offset
	// (KIP-932): every record below it is acknowledged or archived.
	StartOffset *int64 `json:"start_offset,omitempty"`
	LogStart    int64  `json:"log_start_offset"`
	LogEnd      int64  `json:"log_end_offset"`
	Lag         int64  `json:"lag"`
	MemberID    string `json:"member_id,omitempty"`
	Error       string `json:"error,omitempty"`
}

func newGroupDescribeCmd(e *clientEnv) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "describe (GROUP... | --all)",
		Short: "Show groups' members, committed offsets and lag",
		Long: "Show consumer groups: each one's state, members and what each is assigned, and\n" +
			"per partition the committed offset, the log end offset and the lag between them.\n" +
			"A partition with nothing committed lags by everything from the log start.\n" +
			"A share group (KIP-932) shows each share partition's start offset instead of a\n" +
			"commit, and lags by the records from there to the log end.\n" +
			"With several groups or --all (every group), a table of each group's state,\n" +
			"members and total lag comes first, then each group in detail. --json prints one\n" +
			"object for one named group, an array for several or --all; a group that cannot\n" +
			"be described is {\"group\", \"error\", \"error_code\"} there, and the exit code is 1.",
		Example: "  sluice group describe billing\n" +
			"  sluice group describe billing --json | jq .total_lag\n" +
			"  sluice group describe billing audit\n" +
			"  sluice group describe --all --json | jq '.[] | {group, total_lag}'",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGroupDescribe(cmd, e, args, all)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "describe every group")
	cmd.ValidArgsFunction = completeGroups(e)
	return cmd
}

// runGroupDescribe describes each group in turn. One group that fails
// does not stop the others: describing several is how an operator looks
// for the broken one.
func runGroupDescribe(cmd *cobra.Command, e *clientEnv, groups []string, all bool) error {
	asJSON, err := e.jsonOutput()
	if err != nil {
		return err
	}
	// Neither would describe nothing; both would be ambiguous about
	// whether --all adds to the names or replaces them.
	if all == (len(groups) > 0) {
		return usageErrorf("give GROUP names or --all, not both or neither")
	}
	// The kgo client too: ConsumerGroupDescribe's member type is not in
	// kadm's answer, so that request is sent as it is.
	cl, err := e.client(cmd.Context())
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := e.requestContext(cmd.Context())
	defer cancel()
	adm := kadm.NewClient(cl)
	if all {
		listed, err := listGroups(ctx, adm)
		if err != nil {
			return err
		}
		for _, g := range listed {
			groups = append(groups, g.Group)
		}
	}
	// entries keeps every name in order for --json: a description, or a
	// nameFailure for a group that could not be described.
	described := []*groupDescription{}
	entries := []any{}
	var failed []nameFailure
	for _, g := range groups {
		d, err := describeGroup(ctx, adm, cl, g)
		if err != nil {
			f := failedGroup(g, err)
			failed = append(failed, f)
			entries = append(entries, f)
			continue
		}
		described = append(described, d)
		entries = append(entries, d)
	}
	switch {
	case asJSON && len(groups) == 1 && !all:
		err = printJSON(cmd.OutOrStdout(), entries[0])
	case asJSON:
		err = printJSON(cmd.OutOrStdout(), entries)
	case len(groups) == 1 && !all:
		if len(described) == 1 {
			err = described[0].print(cmd.OutOrStdout())
		}
	default:
		err = printGroupDescriptions(cmd.OutOrStdout(), described)
	}
	if err != nil {
		return err
	}
	return failureErrors(failed)
}

// printGroupDescriptions prints several groups: a summary line each, for
// the total lag at a glance, then each group in detail.
func printGroupDescriptions(w io.Writer, described []*groupDescription) error {
	rows := make([][]string, 0, len(described))
	for _, d := range described {
		rows = append(rows, []string{d.Group, d.State, strconv.Itoa(len(d.Members)), strconv.FormatInt(d.TotalLag, 10)})
	}
	if err := printTable(w, []string{"GROUP", "STATE", "MEMBERS", "TOTAL-LAG"}, rows); err != nil {
		return err
	}
	for _, d := range described {
		fmt.Fprintln(w)
		if err := d.print(w); err != nil {
			return err
		}
	}
	return nil
}

// describeGroup reads one group with its lag. A group reported Dead with
// no commits and no members is one that does not exist: DescribeGroups up
// to v5 answers an unknown group that way, with no error code.
func describeGroup(ctx context.Context, adm *kadm.Client, cl kmsg.Requestor, group string) (*groupDescription, error) {
	// kadm's Lag does describe, fetch offsets and list end offsets in one
	// call, so the lag is computed from answers taken moments apart, as
	// Kafka's tool does; under heavy writes it is a snapshot, not exact.
	var lags kadm.DescribedGroupLags
	err := groupRetry(ctx, func() (err error) {
		lags, err = adm.Lag(ctx, group)
		if err == nil {
			if l, ok := lags[group]; ok {
				err = l.Error()
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("describe group %q: %w", group, err)
	}
	l, ok := lags[group]
	if !ok || (l.State == "Dead" && len(l.Lag) == 0 && len(l.Members) == 0) {
		// Kafka's DescribeGroups answers a group it does not know as Dead
		// with no error; the code is named here so scripts see the same
		// GROUP_ID_NOT_FOUND that delete and offset-delete report.
		return nil, fmt.Errorf("group %q does not exist (%w)", group, kerr.GroupIDNotFound)
	}
	d := &groupDescription{
		Group: group, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
		Coordinator: net.JoinHostPort(l.Coordinator.Host, strconv.Itoa(int(l.Coordinator.Port))),
		Members:     []groupMemberDesc{}, Partitions: []groupPartitionDesc{},
		TotalLag: l.Lag.Total(), GroupType: "classic",
	}
	for _, m := range l.Members {
		md := groupMemberDesc{MemberID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assigned: map[string][]int32{}}
		if m.InstanceID != nil {
			md.InstanceID = *m.InstanceID
		}
		// Only consumer-protocol groups have an assignment we can read;
		// a Connect or other protocol group's is opaque bytes, and its
		// members show with no partitions rather than with garbage.
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				md.Assigned[t.Topic] = slices.Sorted(slices.Values(t.Partitions))
			}
		}
		d.Members = append(d.Members, md)
	}
	for _, p := range l.Lag.Sorted() {
		pd := groupPartitionDesc{Topic: p.Topic, Partition: p.Partition, Committed: p.Commit.At,
			LogStart: p.Start.Offset, LogEnd: p.End.Offset, Lag: p.Lag}
		if p.Member != nil {
			pd.MemberID = p.Member.MemberID
		}
		if p.Err != nil {
			pd.Error = p.Err.Error()
		}
		d.Partitions = append(d.Partitions, pd)
	}
	if err := describeByProtocol(ctx, adm, cl, l.ProtocolType, d); err != nil {
		return nil, err
	}
	return d, nil
}

// describeByProtocol adds what DescribeGroups and the commits cannot tell
// of a consumer-protocol group or a share group.
func describeByProtocol(ctx context.Context, adm *kadm.Client, cl kmsg.Requestor, protocolType string, d *groupDescription) error {
	switch protocolType {
	case "consumer":
		return describeConsumerProtocol(ctx, cl, d)
	case shareProtocolType:
		if err := describeShareMembers(ctx, adm, d); err != nil {
			return err
		}
		return describeShareOffsets(ctx, adm, d)
	}
	return nil
}

// describeConsumerProtocol adds what ConsumerGroupDescribe knows of a
// consumer-protocol (KIP-848) group: DescribeGroups shows its members
// without assignments, and neither it nor kadm's answer tells a classic
// member of a mixed group from a consumer-protocol one (the member type
// of ConsumerGroupDescribe v1, read here from the request itself). A
// classic group answers GROUP_ID_NOT_FOUND and is left as it is.
func describeConsumerProtocol(ctx context.Context, cl kmsg.Requestor, d *groupDescription) error {
	var g kmsg.ConsumerGroupDescribeResponseGroup
	err := groupRetry(ctx, func() error {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{d.Group}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		if len(resp.Groups) != 1 {
			return fmt.Errorf("%d groups in the answer", len(resp.Groups))
		}
		g = resp.Groups[0]
		return kerr.ErrorForCode(g.ErrorCode)
	})
	if errors.Is(err, kerr.GroupIDNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("describe consumer group %q: %w", d.Group, err)
	}
	d.GroupType, d.State, d.GroupEpoch, d.AssignmentEpoch, d.Assignor = "consumer", g.State, g.Epoch, g.AssignmentEpoch, g.AssignorName
	d.Members = d.Members[:0]
	owner := map[string]map[int32]string{}
	for _, m := range g.Members {
		epoch := m.MemberEpoch
		md := groupMemberDesc{MemberID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assigned: map[string][]int32{},
			MemberEpoch: &epoch, MemberType: memberTypeName(m.MemberType)}
		if m.InstanceID != nil {
			md.InstanceID = *m.InstanceID
		}
		for _, t := range m.Assignment.TopicPartitions {
			for _, p := range t.Partitions {
				md.Assigned[t.Topic] = append(md.Assigned[t.Topic], p)
				if owner[t.Topic] == nil {
					owner[t.Topic] = map[int32]string{}
				}
				owner[t.Topic][p] = m.MemberID
			}
			slices.Sort(md.Assigned[t.Topic])
		}
		d.Members = append(d.Members, md)
	}
	for i := range d.Partitions {
		if id, ok := owner[d.Partitions[i].Topic][d.Partitions[i].Partition]; ok {
			d.Partitions[i].MemberID = id
		}
	}
	return nil
}

// memberTypeName names ConsumerGroupDescribe's member type (v1+; -1 from
// a broker that does not say).
func memberTypeName(t int8) string {
	switch t {
	case 0:
		return "classic"
	case 1:
		return "consumer"
	}
	return ""
}

func (d *groupDescription) print(w io.Writer) error {
	protocol := d.ProtocolType
	if d.Protocol != "" {
		protocol += " (" + d.Protocol + ")"
	}
	if d.GroupType == "consumer" {
		protocol = fmt.Sprintf("consumer group protocol (KIP-848), assignor %s, group epoch %d, assignment epoch %d",
			d.Assignor, d.GroupEpoch, d.AssignmentEpoch)
	}
	if d.GroupType == shareProtocolType {
		protocol = fmt.Sprintf("share group (KIP-932), assignor %s, group epoch %d", d.Assignor, d.GroupEpoch)
	}
	if err := printFields(w,
		[2]string{"Group", d.Group}, [2]string{"State", d.State}, [2]string{"Protocol", protocol},
		[2]string{"Coordinator", d.Coordinator}, [2]string{"Members", strconv.Itoa(len(d.Members))},
		[2]string{"Total lag", strconv.FormatInt(d.TotalLag, 10)}); err != nil {
		return err
	}
	if len(d.Members) > 0 {
		fmt.Fprintln(w)
		rows := make([][]string, 0, len(d.Members))
		header := []string{"MEMBER", "INSTANCE", "CLIENT-ID", "HOST", "ASSIGNED"}
		switch d.GroupType {
		case "consumer":
			header = []string{"MEMBER", "EPOCH", "TYPE", "INSTANCE", "CLIENT-ID", "HOST", "ASSIGNED"}
		case shareProtocolType:
			header = []string{"MEMBER", "EPOCH", "INSTANCE", "CLIENT-ID", "HOST", "ASSIGNED"}
		}
		for _, m := range d.Members {
			row := []string{m.MemberID, m.InstanceID, m.ClientID, m.ClientHost, formatAssigned(m.Assigned)}
			if m.MemberEpoch != nil {
				row = slices.Insert(row, 1, strconv.Itoa(int(*m.MemberEpoch)))
			}
			if d.GroupType == "consumer" {
				row = slices.Insert(row, 2, m.MemberType)
			}
			rows = append(rows, row)
		}
		if err := printTable(w, header, rows); err != nil {
			return err
		}
	}
	if len(d.Partitions) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	if d.GroupType == shareProtocolType {
		return d.printShareOffsets(w)
	}
	rows := make([][]string, 0, len(d.Partitions))
	for _, p := range d.Partitions {
		committed := ""
		if p.Committed >= 0 {
			committed = strconv.FormatInt(p.Committed, 10)
		}
		rows = append(rows, []string{p.Topic, strconv.Itoa(int(p.Partition)), committed,
			strconv.FormatInt(p.LogEnd, 10), strconv.FormatInt(p.Lag, 10), p.MemberID, p.Error})
	}
	return printTable(w, []string{"TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "MEMBER", "ERROR"}, rows)
}

// printShareOffsets prints a share group's partitions: share partitions
// are not owned by one member, so there is no MEMBER column.
func (d *groupDescription) printShareOffsets(w io.Writer) error {
	rows := make([][]string, 0, len(d.Partitions))
	for _, p := range d.Partitions {
		start := ""
		if p.StartOffset != nil {
			start = strconv.FormatInt(*p.StartOffset, 10)
		}
		rows = append(rows, []string{p.Topic, strconv.Itoa(int(p.Partition)), start,
			strconv.FormatInt(p.LogEnd, 10), strconv.FormatInt(p.Lag, 10), p.Error})
	}
	return printTable(w, []string{"TOPIC", "PARTITION", "START-OFFSET", "LOG-END", "LAG", "ERROR"}, rows)
}

// formatAssigned prints an assignment as topic:0,1 other:2.
func formatAssigned(a map[string][]int32) string {
	topics := make([]string, 0, len(a))
	for t := range a {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	parts := make([]string, len(topics))
	for i, t := range topics {
		parts[i] = t + ":" + joinIDs(a[t])
	}
	return strings.Join(parts, " ")
}
