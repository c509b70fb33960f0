package console

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

const (
	groupsPerPage    = 100
	lagRowsPerPage   = 200
	maxShownAssigned = 64 // partitions listed per member before "and N more"
)

type groupRow struct {
	Name         string
	State        string
	ProtocolType string
	Coordinator  int32
	// Lag is the latest sampled total lag, -1 before the first sample.
	Lag int64
}

type groupsData struct {
	Filter string
	Rows   []groupRow
	Pager  pager
}

func (c *Console) groupsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.requestContext(r)
	defer cancel()
	filter := strings.TrimSpace(r.URL.Query().Get("q"))
	data := groupsData{Filter: filter}
	listed, err := c.admin.ListGroups(ctx)
	if err == nil {
		var names []string
		for _, name := range listed.Groups() {
			if strings.Contains(name, filter) {
				names = append(names, name)
			}
		}
		data.Pager = newPager(r, len(names), groupsPerPage)
		for _, name := range names[data.Pager.First:data.Pager.Last] {
			g := listed[name]
			row := groupRow{Name: name, State: g.State, ProtocolType: g.ProtocolType, Coordinator: g.Coordinator, Lag: -1}
			if points := c.samples.lagPoints(name); len(points) > 0 {
				row.Lag = points[len(points)-1].Lag
			}
			data.Rows = append(data.Rows, row)
		}
	}
	c.render(w, statusFor(err), "groups", page{Title: "Consumer groups", Nav: "groups", Error: errText(err), Data: data})
}

type memberRow struct {
	MemberID   string
	InstanceID string
	ClientID   string
	Host       string
	Assigned   string // "topic: 0,1,2; other: 3"
	Partitions int
}

type lagRow struct {
	Topic     string
	Partition int32
	Committed int64
	End       int64
	Lag       int64
	Member    string
	Err       string
}

type groupData struct {
	Group        string
	State        string
	ProtocolType string
	Protocol     string
	Coordinator  int32
	Members      []memberRow
	Lag          []lagRow
	TotalLag     int64
	Pager        pager
	// Topics are the topics the group has commits for, offered by the
	// reset form (nil past maxChoices: the form then takes a typed name).
	Topics     []string
	TopicCount int
}

func (c *Console) groupPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.requestContext(r)
	defer cancel()
	name := r.PathValue("group")
	data := groupData{Group: name}
	lags, err := c.admin.Lag(ctx, name)
	if err == nil {
		l := lags[name]
		if err = l.Error(); err == nil {
			data = groupDataOf(r, l)
		}
	}
	c.render(w, statusFor(err), "group", page{Title: "Group " + name, Nav: "groups", Error: errText(err),
		Notice: r.URL.Query().Get("notice"), Data: data})
}

func groupDataOf(r *http.Request, l kadm.DescribedGroupLag) groupData {
	data := groupData{Group: l.Group, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
		Coordinator: l.Coordinator.NodeID, TotalLag: l.Lag.Total()}
	for _, m := range l.Members {
		data.Members = append(data.Members, memberRowOf(m))
	}
	sorted := l.Lag.Sorted()
	data.Pager = newPager(r, len(sorted), lagRowsPerPage)
	for _, gl := range sorted[data.Pager.First:data.Pager.Last] {
		row := lagRow{Topic: gl.Topic, Partition: gl.Partition, Committed: gl.Commit.At, End: gl.End.Offset, Lag: gl.Lag, Err: errText(gl.Err)}
		if gl.Member != nil {
			row.Member = cmp.Or(gl.Member.ClientID, gl.Member.MemberID)
		}
		data.Lag = append(data.Lag, row)
	}
	for topic := range l.Lag {
		data.Topics = append(data.Topics, topic)
	}
	slices.Sort(data.Topics)
	data.TopicCount = len(data.Topics)
	data.Topics = capChoices(data.Topics)
	return data
}

func memberRowOf(m kadm.DescribedGroupMember) memberRow {
	row := memberRow{MemberID: m.MemberID, InstanceID: derefString(m.InstanceID), ClientID: m.ClientID, Host: m.ClientHost}
	assignment, ok := m.Assigned.AsConsumer()
	if !ok {
		row.Assigned = "(not a consumer-protocol assignment)"
		return row
	}
	var parts []string
	shown := 0
	for _, t := range assignment.Topics {
		row.Partitions += len(t.Partitions)
		if shown >= maxShownAssigned {
			continue
		}
		ids := t.Partitions[:min(len(t.Partitions), maxShownAssigned-shown)]
		shown += len(ids)
		parts = append(parts, t.Topic+": "+joinInt32s(ids))
	}
	row.Assigned = strings.Join(parts, "; ")
	if row.Partitions > shown {
		row.Assigned += fmt.Sprintf(" … and %d more", row.Partitions-shown)
	}
	return row
}

func (c *Console) groupLagJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{
		"group":       r.PathValue("group"),
		"interval_ms": c.opts.LagInterval.Milliseconds(),
		"points":      c.samples.lagPoints(r.PathValue("group")),
	})
}

func (c *Console) throughputJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{
		"interval_ms": c.opts.ThroughputInterval.Milliseconds(),
		"points":      c.samples.throughputPoints(),
	})
}
